package agent

import (
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/beacon-dns/beacon/adminapi"
)

// HostInfo describes the machine the agent runs on for /v1/agent/host, as
// Consul collects it (with gopsutil, which the binary links already):
// memory, CPUs, the host, and the usage of the disk that holds data_dir
// (Consul reports "/"; data_dir's is the one that fills up under beacon).
// What cannot be read is named in Errors and the rest is still reported.
func (a *Agent) HostInfo() adminapi.HostInfo {
	info := adminapi.HostInfo{CollectionTime: time.Now().UTC().UnixNano()}
	fail := func(what string, err error) { info.Errors = append(info.Errors, what+": "+err.Error()) }
	if h, err := host.Info(); err != nil {
		fail("host", err)
	} else {
		info.Host = h
	}
	if m, err := mem.VirtualMemory(); err != nil {
		fail("memory", err)
	} else {
		info.Memory = m
	}
	if d, err := disk.Usage(a.cfg.DataDir); err != nil {
		fail("disk", err)
	} else {
		info.Disk = d
	}
	if c, err := cpu.Info(); err != nil {
		fail("cpu", err)
	} else {
		info.CPU = c
	}
	return info
}
