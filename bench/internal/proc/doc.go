// Package proc reads what the benchmark commands measure of processes from
// /proc. It imports no beacon package: benchmarks see beacon only from the
// outside.
package proc
