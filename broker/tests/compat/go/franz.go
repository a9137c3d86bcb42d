// franz-go (github.com/twmb/franz-go) against the broker: kadm CreateTopics, the default
// idempotent acks=all producer, a consumer group with manual commits, and a second member of
// the group that must resume from those commits. Also the produce half of the crash test.

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// franzOpts: what every franz-go client here shares. Info logging goes to stderr, which the
// Rust test shows only when the run fails.
func franzOpts(bootstrap string, vlog *versionLog) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(bootstrap),
		kgo.Dialer(func(_ context.Context, network, host string) (net.Conn, error) {
			return vlog.dial(network, host)
		}),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, kgo.LogLevelInfo, func() string {
			return time.Now().Format("15:04:05.000 ") + "franz "
		})),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(20 * time.Second),
	}
}

// franzCreateTopic creates the topic, then creates it again: the second answer must be
// TOPIC_ALREADY_EXISTS, which is what "tolerate it existing" relies on.
func franzCreateTopic(adm *kadm.Client, topic string) error {
	for attempt := 0; attempt < 2; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		_, err := adm.CreateTopic(ctx, numPartitions, 1, nil, topic)
		cancel()
		switch {
		case err == nil && attempt == 0:
		case errors.Is(err, kerr.TopicAlreadyExists) && attempt == 1:
		case err == nil:
			return fmt.Errorf("creating topic %s a second time succeeded; want TOPIC_ALREADY_EXISTS", topic)
		default:
			return fmt.Errorf("create topic %s (attempt %d): %w", topic, attempt+1, err)
		}
	}
	return nil
}

// franzProduce produces records [from, to) and waits for every acknowledgement; any failed
// record fails the whole produce.
func franzProduce(cl *kgo.Client, topic, run string, from, to int) (map[string]position, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		acked = map[string]position{}
		first error
	)
	for i := from; i < to; i++ {
		rec := &kgo.Record{Topic: topic, Key: []byte(recordKey(i)), Value: []byte(recordValue(run, i))}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if first == nil {
					first = fmt.Errorf("produce %s: %w", r.Value, err)
				}
				return
			}
			acked[string(r.Value)] = position{r.Partition, r.Offset}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if first != nil {
		return nil, first
	}
	if len(acked) != to-from {
		return nil, fmt.Errorf("%d records acknowledged of %d", len(acked), to-from)
	}
	return acked, nil
}

// franzPoll polls until the tracker has everything (committing each poll's records at once with
// CommitRecords) or until the deadline.
func franzPoll(cl *kgo.Client, t *tracker, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !t.done() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v: %s", limit, t.missing())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fetches := cl.PollFetches(ctx)
		cancel()
		if err := franzFetchErr(fetches); err != nil {
			return err
		}
		recs := fetches.Records()
		for _, r := range recs {
			if err := t.add(string(r.Value), r.Partition, r.Offset); err != nil {
				return err
			}
		}
		if len(recs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.CommitRecords(ctx, recs...)
			cancel()
			if err != nil {
				return fmt.Errorf("commit records: %w", err)
			}
		}
	}
	return nil
}

// franzFetchErr: the first real fetch error; the poll's own deadline is not one.
func franzFetchErr(fetches kgo.Fetches) error {
	for _, e := range fetches.Errors() {
		if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
			continue
		}
		return fmt.Errorf("fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
	}
	return nil
}

// franzGroupConsumer joins the group and reports when it owns every partition.
func franzGroupConsumer(base []kgo.Opt, topic, group string) (*kgo.Client, <-chan struct{}, error) {
	assigned := make(chan struct{})
	var once sync.Once
	opts := append(append([]kgo.Opt{}, base...),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(),
		// Only a missing commit could make a member start over; with AtStart it would then
		// re-read old records, which the checks catch.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			if len(a[topic]) == numPartitions {
				once.Do(func() { close(assigned) })
			}
		}),
	)
	cl, err := kgo.NewClient(opts...)
	return cl, assigned, err
}

// franzCheckGroup: the committed offsets are the ends of the partitions, and the group has no
// members left (the consumer's Close sent LeaveGroup).
func franzCheckGroup(adm *kadm.Client, group, topic string, ends map[int32]int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	for p, end := range ends {
		o, ok := committed.Lookup(topic, p)
		if !ok || o.At != end {
			return fmt.Errorf("partition %d: committed %v (found %v), want %d", p, o.At, ok, end)
		}
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describe group: %w", err)
	}
	d := described[group]
	if d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
		return fmt.Errorf("after close the group is %q with %d members (err %v); want Empty with none", d.State, len(d.Members), d.Err)
	}
	return nil
}

func runFranz(bootstrap string) (*summary, error) {
	start := time.Now()
	vlog := newVersionLog()
	topic, group := runName("franz", "topic"), runName("franz", "group")
	base := franzOpts(bootstrap, vlog)

	// One client for admin and producing: franz-go's producer is idempotent by default; acks
	// all is the default too, set here so the test does not depend on that.
	prod, err := kgo.NewClient(append(append([]kgo.Opt{}, base...), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	if err := franzCreateTopic(adm, topic); err != nil {
		return nil, err
	}

	acked, err := franzProduce(prod, topic, topic, 0, numRecords)
	if err != nil {
		return nil, err
	}

	// First member: everything back exactly once, in order per partition, committed.
	first, assigned, err := franzGroupConsumer(base, topic, group)
	if err != nil {
		return nil, fmt.Errorf("new consumer: %w", err)
	}
	t := newTracker(acked)
	err = franzPoll(first, t, 60*time.Second)
	if err == nil {
		select {
		case <-assigned:
		default:
			err = errors.New("consumed everything without being assigned all partitions")
		}
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if cerr := first.CommitUncommittedOffsets(ctx); cerr != nil {
			err = fmt.Errorf("commit uncommitted offsets: %w", cerr)
		}
		cancel()
	}
	first.Close() // leaves the group
	if err != nil {
		return nil, fmt.Errorf("first consumer: %w", err)
	}
	if err := franzCheckGroup(adm, group, topic, endOffsets(acked)); err != nil {
		return nil, err
	}

	// Second member: starts from the commits, so nothing until the late records.
	quiet, late, lt, err := franzSecondMember(base, prod, topic, group)
	if err != nil {
		return nil, err
	}
	all := map[string]position{}
	for k, v := range acked {
		all[k] = v
	}
	for k, v := range late {
		all[k] = v
	}
	if err := franzCheckGroup(adm, group, topic, endOffsets(all)); err != nil {
		return nil, fmt.Errorf("after the second consumer: %w", err)
	}

	return &summary{
		Client: "franz-go v1.22.3", Topic: topic, Group: group,
		Produced: numRecords + numLate, Consumed: t.count(),
		SecondBeforeLate: quiet.count(), SecondLate: lt.count(),
		APIVersions: vlog.byName(), Seconds: time.Since(start).Seconds(),
	}, nil
}

// franzSecondMember runs the second member of the group: nothing during the quiet window (the
// commits hold), then exactly the late records. It leaves the group before returning.
func franzSecondMember(base []kgo.Opt, prod *kgo.Client, topic, group string) (quiet *tracker, late map[string]position, lt *tracker, err error) {
	second, assigned, err := franzGroupConsumer(base, topic, group)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("new second consumer: %w", err)
	}
	defer second.Close()
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		return nil, nil, nil, errors.New("second consumer was not assigned every partition within 30 s")
	}
	quiet = newTracker(map[string]position{})
	if err := franzPollFor(second, quiet, quietWindow); err != nil {
		return nil, nil, nil, fmt.Errorf("second consumer, before the late records (committed positions not held?): %w", err)
	}
	late, err = franzProduce(prod, topic, topic, numRecords, numRecords+numLate)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("late records: %w", err)
	}
	lt = newTracker(late)
	if err := franzPoll(second, lt, 30*time.Second); err != nil {
		return nil, nil, nil, fmt.Errorf("second consumer, late records: %w", err)
	}
	// Anything beyond the ten would be a redelivery; give it a moment to show.
	if err := franzPollFor(second, lt, time.Second); err != nil {
		return nil, nil, nil, fmt.Errorf("second consumer, after the late records: %w", err)
	}
	return quiet, late, lt, nil
}

// franzPollFor polls for exactly `window`, feeding whatever arrives to the tracker (which rejects
// anything it does not expect).
func franzPollFor(cl *kgo.Client, t *tracker, window time.Duration) error {
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		fetches := cl.PollFetches(ctx)
		cancel()
		if err := franzFetchErr(fetches); err != nil {
			return err
		}
		for _, r := range fetches.Records() {
			if err := t.add(string(r.Value), r.Partition, r.Offset); err != nil {
				return err
			}
		}
	}
	return nil
}

// crashSummary is the final line of franz-produce-verify.
type crashSummary struct {
	Client      string `json:"client"`
	Topic       string `json:"topic"`
	Sent        int    `json:"sent"`
	Acked       int    `json:"acked"`
	Failed      int    `json:"failed"`
	FirstError  string `json:"first_error,omitempty"`
	Connections int    `json:"connections"` // more than a few: it reconnected

	APIVersions map[string][]int16 `json:"api_versions"`
	Seconds     float64            `json:"seconds"`
}

// runFranzProduceVerify produces n records at about 2000 a second, so that a crash the caller
// causes lands while batches are in flight. Each acknowledgement is printed at once as
// "ACK <value> <partition> <offset>" (the caller checks those against the log afterwards), each
// failure as "NACK <value> <error>". franz-go retries through the crash (idempotently: the same
// producer id, epoch and sequence numbers), so every record should end up acknowledged.
func runFranzProduceVerify(bootstrap, topic string, n int) (*crashSummary, error) {
	start := time.Now()
	vlog := newVersionLog()
	cl, err := kgo.NewClient(append(franzOpts(bootstrap, vlog), kgo.RequiredAcks(kgo.AllISRAcks()))...)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	_, err = kadm.NewClient(cl).CreateTopic(ctx, numPartitions, 1, nil, topic)
	cancel()
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return nil, fmt.Errorf("create topic: %w", err)
	}

	out := bufio.NewWriter(os.Stdout)
	var (
		mu            sync.Mutex
		acked, failed int
		firstErr      string
	)
	ctx, cancel = context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := 0; i < n; i++ {
		rec := &kgo.Record{Topic: topic, Key: []byte(recordKey(i)), Value: []byte(recordValue(topic, i))}
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if firstErr == "" {
					firstErr = err.Error()
				}
				fmt.Fprintf(out, "NACK %s %v\n", r.Value, err)
			} else {
				acked++
				fmt.Fprintf(out, "ACK %s %d %d\n", r.Value, r.Partition, r.Offset)
			}
			// The caller watches the count to time its crash.
			_ = out.Flush()
		})
		if i%10 == 9 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	flushErr := cl.Flush(ctx)
	mu.Lock()
	defer mu.Unlock()
	if flushErr != nil {
		return nil, fmt.Errorf("flush (acked %d, failed %d): %w", acked, failed, flushErr)
	}
	return &crashSummary{
		Client: "franz-go v1.22.3", Topic: topic, Sent: n, Acked: acked, Failed: failed,
		FirstError: firstErr, Connections: vlog.connections(), APIVersions: vlog.byName(), Seconds: time.Since(start).Seconds(),
	}, nil
}
