// Package host finds source plugin binaries, checks who may change them
// and their pins on the very file it runs, launches one process per feed
// through go-plugin with only the environment the feed needs and a cap on
// what the plugin may send, and re-emits each plugin's JSON logs under its
// feed's name.
package host
