// Command compat runs the two major Go Kafka clients, franz-go and sarama, against our broker
// over TCP. It exists because the Rust, C (librdkafka) and Python clients the other wire tests
// use share none of their protocol code with the Go ones: franz-go and sarama pick their own
// request versions, batch, retry and run consumer groups their own way, and a broker that only
// works for librdkafka would still break every Go service that talks to it.
//
// Subcommands (run by broker/tests/wire/go_clients.rs; usable by hand against any broker):
//
//	compat franz BOOTSTRAP                  admin, idempotent produce, group consume with franz-go
//	compat sarama BOOTSTRAP                 the same with sarama
//	compat franz-produce-verify BOOTSTRAP TOPIC N
//	                                        produce N records at a steady pace (the caller crashes
//	                                        the broker meanwhile) and print each acknowledgement
//
// Each prints one final JSON line on stdout and exits 0 only if every check held; otherwise it
// prints "FAIL: ..." on stderr and exits 1. Every wait is bounded, and a watchdog ends the whole
// run, so a broker that stops answering fails the run instead of hanging it.
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	// records produced and consumed in the main round trip
	numRecords = 2000
	// records produced after the second consumer found nothing new
	numLate = 10
	// partitions of the topic each run creates
	numPartitions = 3
	// how long the second consumer must see nothing before "committed positions held" counts
	quietWindow = 2500 * time.Millisecond
	// a bound for the whole run: the watchdog fails it past this
	overallTimeout = 150 * time.Second
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: compat franz BOOTSTRAP | compat sarama BOOTSTRAP | compat franz-produce-verify BOOTSTRAP TOPIC N")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	// A broker that stops answering must fail the run, not hang it; the clients' own timeouts
	// bound single requests, this bounds everything else.
	time.AfterFunc(overallTimeout, func() {
		fmt.Fprintf(os.Stderr, "FAIL: %s did not finish within %v\n", os.Args[1], overallTimeout)
		os.Exit(1)
	})
	cmd, bootstrap := os.Args[1], os.Args[2]
	var (
		sum any
		err error
	)
	switch cmd {
	case "franz":
		sum, err = runFranz(bootstrap)
	case "sarama":
		sum, err = runSarama(bootstrap)
	case "franz-produce-verify":
		if len(os.Args) != 5 {
			usage()
		}
		var n int
		if _, perr := fmt.Sscanf(os.Args[4], "%d", &n); perr != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "FAIL: N must be a positive number, got %q\n", os.Args[4])
			os.Exit(2)
		}
		sum, err = runFranzProduceVerify(bootstrap, os.Args[3], n)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: %v\n", cmd, err)
		os.Exit(1)
	}
	line, err := json.Marshal(sum)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %s: encoding the summary: %v\n", cmd, err)
		os.Exit(1)
	}
	fmt.Println(string(line))
}

// summary is the final JSON line of the franz and sarama subcommands.
type summary struct {
	Client   string `json:"client"`
	Topic    string `json:"topic"`
	Group    string `json:"group"`
	Produced int    `json:"produced"`
	Consumed int    `json:"consumed"`
	// records the second consumer of the group got before the late ones were produced (0)
	SecondBeforeLate int `json:"second_before_late"`
	// records the second consumer got after that (numLate)
	SecondLate int `json:"second_late"`
	// every request version the client sent, by API name, read off the wire
	APIVersions map[string][]int16 `json:"api_versions"`
	Seconds     float64            `json:"seconds"`
}

// runName makes topic and group names unique per run, so running the command twice against
// one broker does not read the previous run's records.
func runName(client, what string) string {
	return fmt.Sprintf("go-%s-%s-%d", client, what, time.Now().UnixNano())
}

// recordKey and recordValue: keyed records (so the clients hash them over the partitions), with
// values unique across the run so that duplicates and losses show.
func recordKey(i int) string               { return fmt.Sprintf("key-%d", i%97) }
func recordValue(run string, i int) string { return fmt.Sprintf("%s-%06d", run, i) }

// position is where the broker said it stored a record (the producer's acknowledgement).
type position struct {
	Partition int32
	Offset    int64
}

// tracker checks consumed records against what was acknowledged: each acknowledged value exactly
// once, at the partition and offset it was acknowledged at, offsets rising per partition.
type tracker struct {
	mu       sync.Mutex
	expected map[string]position
	seen     map[string]bool
	last     map[int32]int64
	err      error
}

func newTracker(expected map[string]position) *tracker {
	return &tracker{expected: expected, seen: map[string]bool{}, last: map[int32]int64{}}
}

// add checks one consumed record; the first violation is kept and returned from then on.
func (t *tracker) add(value string, partition int32, offset int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return t.err
	}
	want, ok := t.expected[value]
	switch {
	case !ok:
		t.err = fmt.Errorf("consumed a record that was not produced (or not in this phase): %q at %d/%d", value, partition, offset)
	case t.seen[value]:
		t.err = fmt.Errorf("consumed %q twice (again at %d/%d)", value, partition, offset)
	case want.Partition != partition || want.Offset != offset:
		t.err = fmt.Errorf("consumed %q at %d/%d, the producer was told %d/%d", value, partition, offset, want.Partition, want.Offset)
	default:
		if last, ok := t.last[partition]; ok && offset <= last {
			t.err = fmt.Errorf("partition %d out of order: offset %d after %d", partition, offset, last)
			break
		}
		t.last[partition] = offset
		t.seen[value] = true
	}
	return t.err
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

func (t *tracker) done() bool { return t.count() == len(t.expected) }

// missing describes what has not arrived, for a failure message.
func (t *tracker) missing() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var m []string
	for v := range t.expected {
		if !t.seen[v] {
			m = append(m, v)
		}
	}
	sort.Strings(m)
	if len(m) > 5 {
		return fmt.Sprintf("%d records missing, first %v", len(m), m[:5])
	}
	return fmt.Sprintf("%d records missing: %v", len(m), m)
}

// endOffsets: per partition, one past the highest acknowledged offset.
func endOffsets(acked map[string]position) map[int32]int64 {
	ends := map[int32]int64{}
	for _, p := range acked {
		if p.Offset+1 > ends[p.Partition] {
			ends[p.Partition] = p.Offset + 1
		}
	}
	return ends
}

// versionLog records the API key and version of every request a client writes. Both clients
// accept a custom dialer, so wrapping their connections shows what they negotiated without
// relying on either one's logging.
type versionLog struct {
	mu    sync.Mutex
	seen  map[int16]map[int16]bool
	dials int // connections opened, to show reconnects
}

func newVersionLog() *versionLog { return &versionLog{seen: map[int16]map[int16]bool{}} }

func (l *versionLog) add(key, version int16) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] == nil {
		l.seen[key] = map[int16]bool{}
	}
	l.seen[key][version] = true
}

func (l *versionLog) connections() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dials
}

func (l *versionLog) byName() map[string][]int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int16{}
	for key, versions := range l.seen {
		name := kmsg.NameForKey(key)
		if name == "" {
			name = fmt.Sprintf("key%d", key)
		}
		for v := range versions {
			out[name] = append(out[name], v)
		}
		sort.Slice(out[name], func(i, j int) bool { return out[name][i] < out[name][j] })
	}
	return out
}

// dial opens a TCP connection whose writes are parsed as Kafka request frames (size, api key,
// api version, ...) for the version log. Plain TCP only, as the broker serves.
func (l *versionLog) dial(network, addr string) (net.Conn, error) {
	l.mu.Lock()
	l.dials++
	l.mu.Unlock()
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial(network, addr)
	if err != nil {
		return nil, err
	}
	return &sniffConn{Conn: c, log: l}, nil
}

type sniffConn struct {
	net.Conn
	log  *versionLog
	head []byte // the first 8 bytes of the frame being written
	skip int    // bytes of the current frame's body still to pass
}

func (c *sniffConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	b := p[:n]
	for len(b) > 0 {
		if c.skip > 0 {
			k := min(c.skip, len(b))
			c.skip -= k
			b = b[k:]
			continue
		}
		k := min(8-len(c.head), len(b))
		c.head = append(c.head, b[:k]...)
		b = b[k:]
		if len(c.head) == 8 {
			size := int(int32(binary.BigEndian.Uint32(c.head[0:4])))
			c.log.add(int16(binary.BigEndian.Uint16(c.head[4:6])), int16(binary.BigEndian.Uint16(c.head[6:8])))
			// size counts everything after the length; 4 of those bytes were the key and version
			c.skip = max(size-4, 0)
			c.head = c.head[:0]
		}
	}
	return n, err
}
