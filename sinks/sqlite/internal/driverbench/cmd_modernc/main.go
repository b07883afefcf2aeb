// Command cmd_modernc links only the pure-Go driver, to time its build
// and check cross-compilation.
package main

import (
	"database/sql"
	"fmt"
	"os"

	_ "modernc.org/sqlite"
)

func main() { os.Exit(run("sqlite")) }

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
