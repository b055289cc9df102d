// Package corefile owns beacon's typed configuration: parsing the `discovery`
// block of a Corefile into a Config, its defaults, and validation that names
// the file, line and property of every mistake.
//
// It imports no other beacon package but internal/tlsutil, with which it
// checks that the TLS files load (so that a bad certificate stops start-up
// naming its line) and says how the agent's TLS is loaded: it only
// describes what the others are asked to be (imports_test.go holds it to
// that).
package corefile
