package collector

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestGRPCIdleConnectionClosed opens an HTTP/2 connection to the gRPC
// port and leaves it idle: the server must send GOAWAY (or close it)
// after MaxConnectionIdle. It used to hold it forever.
func TestGRPCIdleConnectionClosed(t *testing.T) {
	setVar(t, &grpcMaxConnectionIdle, 500*time.Millisecond)
	c := startTest(t, "")
	conn, err := net.Dial("tcp", c.Addrs().OTLPGRPC)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The client connection preface and an empty SETTINGS frame.
	if _, err := io.WriteString(conn, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"); err != nil {
		t.Fatal(err)
	}
	// Bounded wait, generous for a loaded machine.
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	var head [9]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err == io.EOF || err == io.ErrUnexpectedEOF {
			return // closed: fine too
		} else if err != nil {
			t.Fatalf("the idle connection was neither closed nor sent GOAWAY: %v", err)
		}
		length := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		typ, flags := head[3], head[4]
		payload := make([]byte, length)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("read frame: %v", err)
		}
		switch {
		case typ == 0x7: // GOAWAY
			return
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS: acknowledge
			conn.Write([]byte{0, 0, 0, 0x4, 0x1, 0, 0, 0, 0})
		case typ == 0x6 && flags&0x1 == 0: // PING: answer
			pong := append([]byte{0, 0, 8, 0x6, 0x1, 0, 0, 0, 0}, payload...)
			conn.Write(pong)
		}
	}
}

// TestConnLimits checks the split of the file limit between the
// listeners.
func TestConnLimits(t *testing.T) {
	cases := []struct {
		nofile              uint64
		wantIngest, wantAPI int
	}{
		{nofile: 1024, wantIngest: 256, wantAPI: 128},
		{nofile: 400, wantIngest: 48, wantAPI: 128},
		{nofile: 256, wantIngest: minIngestConns, wantAPI: 128},
		{nofile: 20000, wantIngest: 5000, wantAPI: 2500},
		{nofile: 1 << 20, wantIngest: 262144, wantAPI: maxAPIConns},
	}
	for _, tc := range cases {
		got := connLimits(tc.nofile)
		for _, name := range []string{"otlp_grpc", "otlp_http", "zipkin"} {
			if got[name] != tc.wantIngest {
				t.Errorf("nofile %d: %s limit %d, want %d", tc.nofile, name, got[name], tc.wantIngest)
			}
		}
		if got["http"] != tc.wantAPI {
			t.Errorf("nofile %d: http limit %d, want %d", tc.nofile, got["http"], tc.wantAPI)
		}
		if sum := uint64(3*got["zipkin"] + got["http"]); tc.nofile >= 400 && sum >= tc.nofile {
			t.Errorf("nofile %d: the limits add up to %d", tc.nofile, sum)
		}
	}
}

// floodChildEnv, when set, makes the test binary run the collector of
// TestConnectionFlood (see floodChild); its value is the data directory.
const floodChildEnv = "FLOWSCOPE_TEST_FLOOD_CHILD"

// floodFileLimit is the RLIMIT_NOFILE of the flooded collector: its
// ingest ports get 48 connections each, its API port 128.
const floodFileLimit = 400

// TestConnectionFlood starts a collector limited to 400 open files in a
// child process, opens far more connections to two of its ingest ports
// than it may hold, and holds them: the API port must still answer
// /healthz, and the ingest ports must not hold more than their limit.
// Before the limits, the collector accepted until it ran out of file
// descriptors, and then its API port could not accept either.
func TestConnectionFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs Linux setrlimit")
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodChild$")
	cmd.Env = append(os.Environ(), floodChildEnv+"="+t.TempDir())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // the child shuts down when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	var addrs Addrs
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read the child's addresses: %v", err)
	}
	if err := json.Unmarshal(line, &addrs); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}

	// 300 connections to each ingest port: 900 against a limit of
	// 400 files. They stay in the backlog or open, sending nothing.
	const perPort = 300
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, addr := range []string{addrs.Zipkin, addrs.OTLPGRPC, addrs.OTLPHTTP} {
		for range perPort {
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", addr, err)
			}
			held = append(held, c)
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (string, error) {
		resp, err := client.Get("http://" + addrs.HTTP + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%s: %s", path, resp.Status)
		}
		return string(b), nil
	}
	// Give the child time to accept all it will (the old code ran out of
	// files here).
	time.Sleep(time.Second)
	for i := range 3 {
		if _, err := get("/healthz"); err != nil {
			t.Fatalf("/healthz (try %d) with the ingest ports flooded: %v", i, err)
		}
	}
	metrics, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	want := connLimits(floodFileLimit)
	for _, name := range []string{"zipkin", "otlp_grpc"} {
		m := regexp.MustCompile(`flowscope_listener_open_connections\{listener="` + name + `"\} (\d+)`).FindStringSubmatch(metrics)
		if m == nil {
			t.Fatalf("no open connections metric for %s", name)
		}
		if n, _ := strconv.Atoi(m[1]); n > want[name] {
			t.Errorf("%s holds %d connections, limit %d", name, n, want[name])
		}
	}
	if !regexp.MustCompile(`flowscope_listener_limit_waits_total\{listener="zipkin"\} [1-9]`).MatchString(metrics) {
		t.Errorf("no limit waits counted on zipkin")
	}
}

// TestFloodChild is the collector of TestConnectionFlood, run in a child
// process with a low file limit. It prints its addresses as JSON and
// serves until its stdin closes.
func TestFloodChild(t *testing.T) {
	dir := os.Getenv(floodChildEnv)
	if dir == "" {
		t.Skip("run by TestConnectionFlood")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = floodFileLimit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	c, err := Start(context.Background(), testConfig(dir), testLogger())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c.Addrs())
	os.Stdout.Write(append(b, '\n'))
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Shutdown(ctx)
}
