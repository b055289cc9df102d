// Package corefile owns beacon's typed configuration: parsing the `discovery`
// block of a Corefile into a Config, its defaults, and validation that names
// the file, line and property of every mistake.
//
// It imports no other beacon package: it only describes what they are asked
// to be (imports_test.go holds it to that).
package corefile
