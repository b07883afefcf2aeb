// Package exchanges holds fake crypto exchanges for tests and demos: each
// an http.Handler speaking one exchange's public trade WebSocket protocol
// as the exchange's public documentation describes it (subscribe
// messages, acknowledgements, heartbeats and their deadlines), with
// frames shaped after the documentation's examples. A client that breaks
// a documented rule is disconnected and the violation recorded. Each
// publishes the trades it is given after every subscription, so a test
// can assert that a feed stores each exactly once, replays included.
package exchanges
