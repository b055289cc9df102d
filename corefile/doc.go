// Package corefile owns beacon's typed configuration: parsing the `discovery`
// block of a Corefile into a Config, its defaults, and validation that names
// the file, line and property of every mistake.
//
// It must not import raftstore, the agent, the HTTP API or the plugin: it only
// describes what they are asked to be.
package corefile
