package proc

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestTicksGrowWithWork(t *testing.T) {
	before, err := Ticks("self")
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := Ticks(strconv.Itoa(os.Getpid())); err != nil || pid < before {
		t.Fatalf("Ticks(own pid) = %d, %v; want ≥ %d", pid, err, before)
	}
	// Spin until the kernel has counted CPU time (a tick is 1–10 ms).
	deadline := time.Now().Add(5 * time.Second)
	for {
		now, err := Ticks("self")
		if err != nil {
			t.Fatal(err)
		}
		if now > before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU time counted after 5 s of spinning (%d ticks)", now)
		}
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
	}
}

func TestTicksOfNoProcess(t *testing.T) {
	if _, err := Ticks("0"); err == nil {
		t.Fatal("Ticks of pid 0 succeeded")
	}
}
