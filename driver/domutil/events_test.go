package domutil

import (
	"context"
	"testing"
	"time"

	"github.com/virtd/virtd/virt"
)

func TestEventsInOrderToEverySubscriber(t *testing.T) {
	var e Events
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, _ := e.Watch(ctx)
	b, _ := e.Watch(ctx)
	for i := 0; i < 3; i++ {
		e.Emit(virt.Domain{Name: "d"}, virt.EventStarted, 0)
	}
	for _, ch := range []<-chan virt.Event{a, b} {
		for want := uint64(1); want <= 3; want++ {
			if ev := <-ch; ev.Seq != want || ev.Domain.Name != "d" || ev.Type != virt.EventStarted {
				t.Fatalf("event %+v, want seq %d", ev, want)
			}
		}
	}
	cancel()
	select {
	case _, ok := <-a:
		if ok {
			t.Fatal("event after cancel")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed when the context ended")
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	e := Events{Buffer: 2}
	slow, _ := e.Watch(context.Background())
	for i := 0; i < 3; i++ {
		e.Emit(virt.Domain{}, virt.EventDefined, 0)
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d events before being dropped, want 2", n)
	}
	e.Close()
	if ch, _ := e.Watch(context.Background()); ch != nil {
		if _, ok := <-ch; ok {
			t.Fatal("Watch after Close must give a closed channel")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Watch(ctx); err == nil {
		t.Fatal("Watch with a cancelled context must fail")
	}
}
