package main

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
)

// TestSeqRows checks the gap and duplicate finder the systemd test relies
// on, on a real SQLite file.
func TestSeqRows(t *testing.T) {
	db := filepath.Join(t.TempDir(), "t.db")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Exec(`CREATE TABLE whole (seq INTEGER); CREATE TABLE holed (seq INTEGER); CREATE TABLE twice (seq INTEGER)`); err != nil {
		t.Fatal(err)
	}
	fill := func(table string, seqs ...int64) {
		for _, s := range seqs {
			if _, err := conn.Exec(`INSERT INTO "`+table+`" (seq) VALUES (?)`, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill("whole", 2, 0, 1, 3)
	fill("holed", 0, 1, 4, 5, 9)
	fill("twice", 0, 1, 1, 2)

	for _, tc := range []struct {
		table string
		want  rows
	}{
		{"whole", rows{Count: 4, Distinct: 4, Min: 0, Max: 3}},
		{"holed", rows{Count: 5, Distinct: 5, Min: 0, Max: 9, Missing: [][2]int64{{2, 3}, {6, 8}}}},
		{"twice", rows{Count: 4, Distinct: 3, Min: 0, Max: 2}},
	} {
		got, err := seqRows(db, tc.table)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.table, got, tc.want)
		}
	}
	if _, err := seqRows(db, "nosuch"); err == nil {
		t.Error("a missing table gave no error")
	}
	if _, err := seqRows(db, `x"; DROP TABLE whole; --`); err == nil {
		t.Error("a quote in the table name was accepted")
	}
}
