// Package dashtest tests the operations files: every Grafana dashboard is
// decoded strictly against Grafana's dashboard schema; every market
// dashboard query runs against a real SQLite file and a real InfluxDB that
// the real agent filled from the simulated Binance exchange (faults
// included, for the feed_events annotations); every agent-health query
// runs against a real Prometheus scraping the real agent, with Grafana's
// variables and macros substituted as Grafana does; and the systemd unit,
// the install script and the Debian package are checked with the tools
// that consume them.
//
// It holds tests only; the files under test live in grafana/, systemd/,
// scripts/install.sh and packaging/.
package dashtest
