package netlimit

import (
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestListenerLimit dials more connections than the limit: the listener
// accepts only up to the limit, and one more for each it closes.
func TestListenerLimit(t *testing.T) {
	cases := []struct {
		name         string
		limit, dials int
	}{
		{"under the limit", 4, 2},
		{"at the limit", 3, 3},
		{"over the limit", 3, 8},
		{"limit of one", 1, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := NewListener(inner, tc.limit)
			accepted := make(chan net.Conn, tc.dials)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var clients []net.Conn
			for range tc.dials {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				clients = append(clients, c)
			}
			want := min(tc.limit, tc.dials)
			waitFor(t, "the first connections", func() bool { return len(accepted) == want })
			time.Sleep(50 * time.Millisecond) // a wrong listener would accept more meanwhile
			if got := len(accepted); got != want || l.Open() > tc.limit {
				t.Fatalf("accepted %d (open %d), want %d", got, l.Open(), want)
			}
			// Each close lets one more in.
			var served []net.Conn
			for got := want; got < tc.dials; got++ {
				c := <-accepted
				c.Close()
				c.Close() // a second Close frees nothing more
				waitFor(t, "the next connection", func() bool { return len(accepted) == want })
				served = append(served, c)
			}
			if tc.dials > tc.limit && l.Waits() == 0 {
				t.Errorf("no waits counted")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			<-done
			for len(accepted) > 0 {
				(<-accepted).Close()
			}
			for _, c := range clients {
				c.Close()
			}
			if l.Open() != 0 {
				t.Errorf("%d slots held after every connection closed", l.Open())
			}
		})
	}
}

// TestListenerCloseUnblocksAccept closes a listener whose Accept waits
// for a slot.
func TestListenerCloseUnblocksAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, 1)
	c1, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	s1, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	waitFor(t, "Accept to wait", func() bool { return l.Waits() == 1 })
	l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Accept still waits after Close")
	}
}
