package rpcerr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/virtd/virtd/virt"
)

func TestKindSurvivesTwoHops(t *testing.T) {
	for _, kind := range append(virt.Kinds, context.Canceled, context.DeadlineExceeded) {
		orig := fmt.Errorf("domain %q: %w", "web", kind)
		// driver -> daemon
		hop1 := FromStatus(ToStatus(orig))
		// daemon -> client
		hop2 := FromStatus(ToStatus(hop1))
		if !errors.Is(hop2, kind) {
			t.Errorf("kind %v lost after two hops: %v", kind, hop2)
		}
		if hop2.Error() != orig.Error() {
			t.Errorf("message changed: %q became %q", orig, hop2)
		}
	}
}

func TestUnknownErrorsBecomeInternal(t *testing.T) {
	err := FromStatus(ToStatus(errors.New("boom")))
	if !errors.Is(err, virt.ErrInternal) || err.Error() != "boom: internal error" {
		t.Fatalf("got %v", err)
	}
	if st, _ := status.FromError(ToStatus(errors.New("x"))); st.Code() != codes.Unknown {
		t.Fatalf("plain error got code %v", st.Code())
	}
}

func TestWrapKeepsKind(t *testing.T) {
	err := Wrap(status.Error(codes.NotFound, "no domain"), "driver %q", "test")
	if !errors.Is(err, virt.ErrNotFound) || err.Error() != `driver "test": no domain: not found` {
		t.Fatalf("got %v", err)
	}
	if Wrap(nil, "x") != nil {
		t.Fatal("Wrap(nil) must be nil")
	}
}

func TestContextInterceptor(t *testing.T) {
	reset := status.Error(codes.Canceled, "stream terminated by RST_STREAM with error code: CANCEL")
	invoke := func(err error) grpc.UnaryInvoker {
		return func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return err }
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	err := FromStatus(ContextInterceptor(expired, "/m", nil, nil, nil, invoke(reset)))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a reset after the deadline passed: %v, want deadline exceeded", err)
	}
	// A live context: the error is the call's own.
	err = FromStatus(ContextInterceptor(context.Background(), "/m", nil, nil, nil, invoke(reset)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a reset on a live context: %v, want it unchanged (cancelled)", err)
	}
	other := status.Error(codes.NotFound, "no domain")
	if err := ContextInterceptor(expired, "/m", nil, nil, nil, invoke(other)); status.Code(err) != codes.NotFound {
		t.Errorf("a not-found after the deadline: %v, want it unchanged", err)
	}
}

func TestSizeLimitExplained(t *testing.T) {
	for _, msg := range []string{
		"grpc: received message larger than max (5242885 vs. 4194304)",
		"grpc: trying to send message larger than max (5242885 vs. 4194304)",
	} {
		err := FromStatus(status.Error(codes.ResourceExhausted, msg))
		if !errors.Is(err, virt.ErrResourceExhausted) ||
			err.Error() != "a message of 5242885 bytes is larger than the limit of 4194304 bytes (max_message_size): resource exhausted" {
			t.Errorf("%q became %v", msg, err)
		}
	}
	other := "too many clients (max_clients = 3)"
	if err := FromStatus(status.Error(codes.ResourceExhausted, other)); err.Error() != other+": resource exhausted" {
		t.Errorf("%q became %v", other, err)
	}
}

func TestInvalidUTF8IsTheCallersInput(t *testing.T) {
	for _, msg := range []string{
		"grpc: error while marshaling: string field contains invalid UTF-8",
		"grpc: failed to unmarshal the received message: string field contains invalid UTF-8",
	} {
		err := FromStatus(status.Error(codes.Internal, msg))
		if !errors.Is(err, virt.ErrInvalidArgument) || !strings.Contains(err.Error(), "not valid UTF-8") {
			t.Errorf("%q became %v", msg, err)
		}
	}
}

// TestFromPeerTellsAnswersFromBrokenConnections: an error a virtd process
// sent keeps saying so after the hop; one gRPC made itself does not.
func TestFromPeerTellsAnswersFromBrokenConnections(t *testing.T) {
	sent := FromStatus(ToStatus(fmt.Errorf("no Xen hypervisor on this host: %w", virt.ErrUnavailable)))
	if !FromPeer(sent) || !errors.Is(sent, virt.ErrUnavailable) || sent.Error() != "no Xen hypervisor on this host: unavailable" {
		t.Errorf("an answer: %v (from peer %v)", sent, FromPeer(sent))
	}
	broken := FromStatus(status.Error(codes.Unavailable, "error reading from server: connection reset by peer"))
	if FromPeer(broken) || !errors.Is(broken, virt.ErrUnavailable) {
		t.Errorf("a broken connection: %v (from peer %v)", broken, FromPeer(broken))
	}
	if FromPeer(fmt.Errorf("wrapped: %w", sent)) != true {
		t.Error("wrapping loses FromPeer")
	}
}
