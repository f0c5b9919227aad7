package e2e

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/virtd/virtd/client"
)

// bigXML is a test domain whose description makes it size bytes long.
func bigXML(name string, size int) string {
	doc := domXML(name)
	pad := size - len(doc) - len("<description></description>")
	return strings.Replace(doc, "</name>", "</name><description>"+strings.Repeat("x", pad)+"</description>", 1)
}

// TestMaxClientsRefusedWithReason: a client connection over max_clients
// gets a resource-exhausted error naming the limit; once another closes,
// a new one is served.
func TestMaxClientsRefusedWithReason(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--max-clients", "3"))
	ctx := ctxT(t)
	var conns []*client.Conn
	// The daemon may still count the connection its start-up check
	// closed: retry until three are served.
	eventually(t, 10*time.Second, "three connections to be served", func() bool {
		c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
		if err == nil {
			conns = append(conns, c)
		}
		return len(conns) == 3
	})
	_, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
	if !errors.Is(err, client.ErrResourceExhausted) || !strings.Contains(err.Error(), "max_clients = 3") {
		t.Fatalf("a fourth connection: %v, want resource exhausted naming max_clients", err)
	}
	// The served ones keep working.
	if _, err := conns[0].LookupByName(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	conns[0].Close(ctx)
	eventually(t, 10*time.Second, "a connection to be served after one closed", func() bool {
		c, err := client.Open(ctx, "test:///default", client.WithSocket(d.sock()))
		if err != nil {
			return false
		}
		c.Close(ctx)
		return true
	})
}

// TestMaxClientStreams: a client connection may open max_client_streams
// event streams; one more is refused, naming the limit; another client
// connection is not affected.
func TestMaxClientStreams(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--max-client-streams", "2"))
	ctx := ctxT(t)
	c := d.open("test:///default")
	var streams []*client.EventStream
	for i := 0; i < 2; i++ {
		s, err := c.WatchEvents(ctx)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		streams = append(streams, s)
	}
	_, err := c.WatchEvents(ctx)
	if !errors.Is(err, client.ErrResourceExhausted) || !strings.Contains(err.Error(), "max_client_streams = 2") {
		t.Fatalf("a third stream: %v, want resource exhausted naming max_client_streams", err)
	}
	if s, err := d.open("test:///default").WatchEvents(ctx); err != nil {
		t.Fatalf("a stream on another client connection: %v", err)
	} else {
		s.Close()
	}
	streams[0].Close()
	eventually(t, 10*time.Second, "a stream to open after one closed", func() bool {
		s, err := c.WatchEvents(ctx)
		if err != nil {
			return false
		}
		s.Close()
		return true
	})
}

// TestMessageSizeLimitOnBothHops: one size limit holds on every hop: over
// it a call is refused as resource exhausted, naming max_message_size (not
// as an internal error from the second hop); raised, a call above the old
// limit passes the daemon and the driver both ways.
func TestMessageSizeLimitOnBothHops(t *testing.T) {
	ctx := ctxT(t)
	d := newDaemon(t, []string{"test"})
	c := d.open("test:///default")
	_, err := c.DefineXML(ctx, bigXML("big", 5<<20))
	if !errors.Is(err, client.ErrResourceExhausted) || !strings.Contains(err.Error(), "limit of 4194304 bytes (max_message_size)") {
		t.Fatalf("a 5 MiB define: %v, want resource exhausted naming max_message_size", err)
	}
	if _, err := c.LookupByName(ctx, "test"); err != nil {
		t.Fatalf("the connection after the refusal: %v", err)
	}

	d = newDaemon(t, []string{"test"}, withArgs("--max-message-size", "8MiB"))
	c = d.open("test:///default")
	doc := bigXML("big", 5<<20)
	dom, err := c.DefineXML(ctx, doc)
	if err != nil {
		t.Fatalf("a 5 MiB define under an 8 MiB limit: %v", err)
	}
	x, err := dom.XML(ctx, true)
	if err != nil || len(x) < 5<<20 {
		t.Fatalf("its XML back: %d bytes, %v", len(x), err)
	}
	_, err = c.DefineXML(ctx, bigXML("bigger", 9<<20))
	if !errors.Is(err, client.ErrResourceExhausted) || !strings.Contains(err.Error(), fmt.Sprintf("limit of %d bytes (max_message_size)", 8<<20)) {
		t.Fatalf("a 9 MiB define under an 8 MiB limit: %v", err)
	}
}

// TestEventStreamOfAClientThatStopsReading: a client that stops reading
// its event stream gets no more than its credit from the daemon; the rest
// waits in the daemon until the client is more than max_event_backlog
// behind, and then its stream ends with a resource-exhausted error naming
// the limit. A client that reads gets every event, in order.
func TestEventStreamOfAClientThatStopsReading(t *testing.T) {
	d := newDaemon(t, []string{"test"}, withArgs("--max-event-backlog", "50"))
	ctx := ctxT(t)
	c := d.open("test:///default")
	stalled, err := c.WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reading, err := d.open("test:///default").WatchEvents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dom, err := c.LookupByName(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	const cycles = 100
	var seqs []uint64
	for i := 0; i < cycles; i++ {
		if err := dom.Suspend(ctx); err != nil {
			t.Fatal(err)
		}
		if err := dom.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		for len(seqs) < 2*(i+1) {
			select {
			case e := <-reading.Events():
				seqs = append(seqs, e.Seq)
			case <-time.After(10 * time.Second):
				t.Fatalf("the reading client got %d events of %d", len(seqs), 2*(i+1))
			}
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("the reading client's events are out of order or missing: %v", seqs)
		}
	}
	// Now read the stalled one: what it had, then the reason it ended.
	got := 0
	for range stalled.Events() {
		got++
	}
	if got >= 2*cycles {
		t.Errorf("the stalled client got all %d events", got)
	}
	if err := stalled.Err(); !errors.Is(err, client.ErrResourceExhausted) || !strings.Contains(err.Error(), "max_event_backlog") {
		t.Fatalf("the stalled client's stream ended with %v, want resource exhausted naming max_event_backlog", err)
	}
}
