package e2e

import "syscall"

// sysProcAttr makes an agent die with the test binary, should the test
// binary be killed (a -timeout panic, ^C) before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
