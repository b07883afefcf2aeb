// Command cmd_mattn links only the cgo driver, to time its build
// and check cross-compilation.
package main

import (
	"database/sql"
	"fmt"
	"os"

	_ "github.com/mattn/go-sqlite3"
)

func main() { os.Exit(run("sqlite3")) }

func run(driver string) int {
	db, err := sql.Open(driver, ":memory:")
	if err == nil {
		var v string
		err = db.QueryRow("select sqlite_version()").Scan(&v)
		fmt.Println(v)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
