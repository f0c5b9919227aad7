package libvirtrpc

import (
	"runtime"
	"testing"
	"time"
)

// A call never waits for another: with every worker busy, run starts one
// more.
func TestWorkersNeverWait(t *testing.T) {
	w := newWorkers(time.Minute)
	release := make(chan struct{})
	defer close(release)
	const busy = 3
	started := make(chan int, busy)
	for i := range busy {
		w.run(func() {
			started <- i
			<-release
		})
	}
	seen := map[int]bool{}
	for range busy {
		select {
		case i := <-started:
			seen[i] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("calls running at once: %d of %d (a call waited for another)", len(seen), busy)
		}
	}
}

// A worker that ran a call waits for the next one: the next call runs on
// it, not on a new goroutine.
func TestWorkerWaitsForNextCall(t *testing.T) {
	w := newWorkers(time.Minute)
	done := make(chan struct{})
	w.run(func() { close(done) })
	<-done
	ran := make(chan struct{})
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case w.ch <- func() { close(ran) }:
			<-ran
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker took a call after its first one ended")
		}
		runtime.Gosched()
	}
}

// A worker ends once no call came for its idle time, so a burst of calls
// leaves no goroutines behind.
func TestWorkerEndsWhenIdle(t *testing.T) {
	w := newWorkers(time.Millisecond)
	ended := make(chan struct{})
	ran := 0
	go func() {
		w.loop(func() { ran++ })
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("an idle worker did not end")
	}
	if ran != 1 {
		t.Fatalf("the worker ran %d calls, want 1", ran)
	}
}
