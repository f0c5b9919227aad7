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
