// Package natsbus is what the NATS sink and the NATS source share: the
// headers a message carries besides its line-protocol body, the escaping
// used in subjects, message ids and headers, and connecting (URLs,
// credentials, TLS) with errors classified the same way on both sides.
package natsbus
