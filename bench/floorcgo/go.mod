module github.com/sluicehq/sluice/bench/floorcgo

go 1.26.8

require (
	github.com/gorilla/websocket v1.5.3
	github.com/mattn/go-sqlite3 v1.14.53
)
