// Package faults is Sluice's fault-injection suite (issue #6): the real
// agent and Binance plugin binaries stream trades from the simulated
// exchange into SQLite and InfluxDB while the suite kills processes,
// stops sinks, tears the disk buffer and breaks WebSocket connections,
// then compares every trade id in every sink with what the exchange
// generated. One scenario runs the jsonws plugin against a hostile
// server instead (jsonws_hostile_test.go); two run the nats sink and
// source against real nats-server: two recorders and a writer through a
// three-node JetStream cluster (nats_test.go), and the sink's bad input
// (nats_sink_test.go). One runs cluster mode: three agents sharing six
// synth feeds through KV leases, one killed -9, and a cluster server
// unreachable or refusing the credentials (cluster_test.go). The
// package holds only tests;
// see faults_test.go for the scenarios and how to run the full version.
package faults
