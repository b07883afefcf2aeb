// Package clienttls is the client side of TLS as every config section
// that reaches a server spells it (the tls: keys of the influxdb and nats
// sinks, the cluster section, the nats and jsonws source plugins), and
// how those keys become a *tls.Config.
package clienttls
