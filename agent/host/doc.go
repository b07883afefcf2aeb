// Package host finds source plugin binaries, checks their pins, launches
// one process per feed through go-plugin, and re-emits each plugin's JSON
// logs under its feed's name.
package host
