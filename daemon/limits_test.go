package daemon

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

func TestReserveKeepsRoomForSmallRequests(t *testing.T) {
	lim := mustLimiter(t, Limits{MaxInflightBytes: 1 << 20})
	var releases []func()
	take := func(n int) error {
		release, err := lim.reserve(n)
		if err == nil {
			releases = append(releases, release)
		}
		return err
	}
	// Large requests may fill three quarters.
	for i := 0; i < 3; i++ {
		if err := take(256 << 10); err != nil {
			t.Fatalf("large request %d: %v", i, err)
		}
	}
	err := take(256 << 10)
	if !errors.Is(err, virt.ErrResourceExhausted) || !strings.Contains(err.Error(), "max_inflight_bytes = 1048576") {
		t.Fatalf("a large request past three quarters: %v", err)
	}
	// The last quarter is for small ones.
	for i := 0; i < 4; i++ {
		if err := take(64 << 10); err != nil {
			t.Fatalf("small request %d: %v", i, err)
		}
	}
	if err := take(1); !errors.Is(err, virt.ErrResourceExhausted) {
		t.Fatalf("a request past the limit: %v", err)
	}
	for _, r := range releases {
		r()
	}
	if lim.inflight != 0 {
		t.Fatalf("%d bytes left in flight after every release", lim.inflight)
	}
	if err := take(256 << 10); err != nil {
		t.Fatalf("after the releases: %v", err)
	}
}

func TestOpenStreamCountsPerConnection(t *testing.T) {
	lim := mustLimiter(t, Limits{MaxClientStreams: 2})
	r1, err1 := lim.openStream(1)
	_, err2 := lim.openStream(1)
	_, err3 := lim.openStream(1)
	_, other := lim.openStream(2)
	if err1 != nil || err2 != nil || other != nil {
		t.Fatalf("streams within the limit: %v %v %v", err1, err2, other)
	}
	if !errors.Is(err3, virt.ErrResourceExhausted) || !strings.Contains(err3.Error(), "max_client_streams = 2") {
		t.Fatalf("a third stream: %v", err3)
	}
	r1()
	if _, err := lim.openStream(1); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
}

// TestMaxClientsMarksRefused: a connection over max_clients is marked
// refused and cut after a while, or at once when many are kept already;
// one that ends makes room.
func TestMaxClientsMarksRefused(t *testing.T) {
	defer func(d time.Duration) { refusedLinger = d }(refusedLinger)
	refusedLinger = 100 * time.Millisecond
	lim := mustLimiter(t, Limits{MaxClients: 1})
	conn := func() (*client, net.Conn) {
		ours, theirs := net.Pipe()
		t.Cleanup(func() { ours.Close(); theirs.Close() })
		return &client{conn: ours}, ours
	}
	first, _ := conn()
	lim.begin(first)
	if first.refused || lim.clients.Load() != 1 {
		t.Fatalf("first connection: refused %v, %d served", first.refused, lim.clients.Load())
	}
	second, ours := conn()
	lim.begin(second)
	if !second.refused || lim.refused.Load() != 1 || lim.clients.Load() != 1 {
		t.Fatalf("second connection: refused %v, %d served, %d refused", second.refused, lim.clients.Load(), lim.refused.Load())
	}
	// Cut once it has had time to hear why.
	if _, err := ours.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading a refused connection: %v, want its deadline to pass", err)
	}
	// Past maxRefused kept at once, a refused connection is closed.
	var kept []*client
	for range maxRefused - 1 {
		c, _ := conn()
		lim.begin(c)
		kept = append(kept, c)
	}
	extra, extraConn := conn()
	lim.begin(extra)
	if _, err := extraConn.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("a refused connection past %d kept: %v, want it closed", maxRefused, err)
	}
	lim.end(extra)
	for _, c := range kept {
		lim.end(c)
	}
	lim.end(second)
	lim.end(first)
	if lim.clients.Load() != 0 || lim.refused.Load() != 0 {
		t.Fatalf("after every end: %d served, %d refused", lim.clients.Load(), lim.refused.Load())
	}
	third, _ := conn()
	if lim.begin(third); third.refused {
		t.Fatal("a connection after the others ended is refused")
	}
}

func TestSizeFlag(t *testing.T) {
	for in, want := range map[string]int{"4194304": 4 << 20, "4MiB": 4 << 20, "64 KiB": 64 << 10, "1GiB": 1 << 30} {
		var f sizeFlag
		if err := f.Set(in); err != nil || int(f) != want {
			t.Errorf("%q: %d, %v; want %d", in, f, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "4MB", "3GiB", "x"} {
		var f sizeFlag
		if err := f.Set(bad); err == nil {
			t.Errorf("%q accepted as %d", bad, f)
		}
	}
}

func mustLimiter(t *testing.T, l Limits) *limiter {
	t.Helper()
	lim, err := newLimiter(l)
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

func TestStreamsMustLeaveRoomForCalls(t *testing.T) {
	_, err := newLimiter(Limits{MaxClientRequests: 8, MaxClientStreams: 8})
	if err == nil || !strings.Contains(err.Error(), "max_client_streams (8) must be less than max_client_requests (8)") {
		t.Fatalf("streams as many as requests: %v", err)
	}
}
