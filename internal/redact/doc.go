// Package redact keeps secrets out of anything Sluice prints: URLs with
// their user-info and secret query parameters masked, free text with every
// URL in it masked, and known secret values replaced wherever they appear,
// in strings, errors and log records. The agent and the in-repo plugins
// share it, so a URL is masked the same way everywhere.
package redact
