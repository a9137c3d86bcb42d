/*
 * Apache Kafka's own Java client (kafka-clients 4.1.1) against our broker at args[0]
 * (host:port). The broker promises that real Kafka clients work unchanged; the Java client is
 * the reference implementation of the protocol, so this is the client whose expectations
 * matter most. Run as a single-file program (Java 17 source launch) by
 * broker/tests/wire/kafka_tools.rs:
 *
 *   java -cp "$(scripts/apache-kafka.sh classpath)" broker/tests/compat/JavaClientCompat.java HOST:PORT
 *
 * Checks, on effects rather than only on answers:
 *   - AdminClient: describeCluster, createTopics (and TopicExistsException on a second try),
 *     listTopics, describeTopics (falls back from DescribeTopicPartitions to Metadata),
 *     describeConfigs of a topic and of broker 1, incrementalAlterConfigs SET and DELETE,
 *     createPartitions, listOffsets (earliest, latest, max-timestamp, by time, earliest-local,
 *     latest-tiered), deleteRecords, describeLogDirs, listGroups (consumer groups),
 *     describeConsumerGroups, listConsumerGroupOffsets, deleteConsumerGroupOffsets,
 *     deleteConsumerGroups, deleteTopics.
 *   - An idempotent acks=all producer: every send's future succeeds, offsets per partition are
 *     dense and in send order.
 *   - A classic-protocol consumer group with enable.auto.commit=false: the first member reads
 *     everything, commits (commitSync) a position in the middle of each partition and leaves; a
 *     second member of the same group gets exactly the records from those positions on.
 *   - A transactional producer is refused at once with a clear error (the broker has no
 *     transactions), rather than retrying until max.block.ms.
 *
 * Exits 1 with a message on a failed check (the first of the main sequence, and the transaction
 * check, which runs regardless); prints "OK" and exits 0 otherwise.
 */

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class JavaClientCompat {
    static final long TIMEOUT_S = 20;
    static final int RECORDS = 120;
    static final String WEEK_MS = String.valueOf(7L * 24 * 3600 * 1000);

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    static <T> T get(org.apache.kafka.common.KafkaFuture<T> f) throws Exception {
        return f.get(TIMEOUT_S, TimeUnit.SECONDS);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: JavaClientCompat HOST:PORT");
            System.exit(2);
        }
        String bootstrap = args[0];
        String suffix = UUID.randomUUID().toString().substring(0, 8);
        // Two independent parts, each reported: a failure in the first does not hide the second.
        int failures = 0;
        try {
            run(bootstrap, suffix);
        } catch (Throwable t) {
            failures++;
            System.err.println("FAILED: " + t);
            t.printStackTrace();
        }
        try {
            transactions(bootstrap);
        } catch (Throwable t) {
            failures++;
            System.err.println("FAILED: " + t);
            t.printStackTrace();
        }
        if (failures > 0) {
            System.exit(1);
        }
        System.out.println("OK");
        System.exit(0);
    }

    static void run(String bootstrap, String suffix) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        try (Admin admin = Admin.create(ap)) {
            String topic = "java-" + suffix;
            String group = "java-group-" + suffix;
            cluster(admin);
            topics(admin, topic);
            configs(admin, topic);
            Map<TopicPartition, List<Long>> sent = produce(bootstrap, topic);
            offsets(admin, topic, sent);
            long deletedBelow = deleteRecords(admin, topic);
            groups(admin, bootstrap, topic, group, sent, deletedBelow);
            logDirs(admin, topic);
            cleanup(admin, topic, group);
        }
    }

    static void cluster(Admin admin) throws Exception {
        DescribeClusterResult c = admin.describeCluster();
        Collection<Node> nodes = get(c.nodes());
        check(nodes.size() == 1, "describeCluster: one node, got " + nodes);
        check(nodes.iterator().next().id() == 1, "describeCluster: node id 1, got " + nodes);
        check(get(c.controller()).id() == 1, "describeCluster: controller 1");
        check("seckill-mq-cluster-001".equals(get(c.clusterId())), "describeCluster: cluster id");
        System.out.println("describeCluster ok: " + nodes);
    }

    static void topics(Admin admin, String topic) throws Exception {
        get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all());
        try {
            get(admin.createTopics(List.of(new NewTopic(topic, 3, (short) 1))).all());
            check(false, "createTopics of an existing topic succeeded");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof TopicExistsException,
                "createTopics twice: TopicExistsException, got " + e.getCause());
        }
        check(get(admin.listTopics().names()).contains(topic), "listTopics lists " + topic);
        TopicDescription d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        check(d.partitions().size() == 3, "describeTopics: 3 partitions, got " + d);
        for (TopicPartitionInfo p : d.partitions()) {
            check(p.leader() != null && p.leader().id() == 1, "describeTopics: leader 1: " + p);
            check(p.replicas().size() == 1 && p.isr().size() == 1, "describeTopics: RF 1: " + p);
        }
        check(d.topicId() != null && !d.topicId().equals(org.apache.kafka.common.Uuid.ZERO_UUID),
            "describeTopics: a topic id");

        get(admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all());
        d = get(admin.describeTopics(List.of(topic)).allTopicNames()).get(topic);
        check(d.partitions().size() == 4, "createPartitions: 4 partitions, got " + d);
        System.out.println("topics ok: " + d);
    }

    static ConfigEntry topicConfig(Admin admin, String topic, String name) throws Exception {
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config c = get(admin.describeConfigs(List.of(r)).all()).get(r);
        ConfigEntry e = c.get(name);
        check(e != null, "describeConfigs: " + topic + " has " + name + ": " + c);
        return e;
    }

    static void configs(Admin admin, String topic) throws Exception {
        ConfigEntry e = topicConfig(admin, topic, "retention.ms");
        check(WEEK_MS.equals(e.value()) && e.source() == ConfigEntry.ConfigSource.DEFAULT_CONFIG,
            "describeConfigs: retention.ms at the default, got " + e);

        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(
            new ConfigEntry("retention.ms", "3600000"), AlterConfigOp.OpType.SET)))).all());
        e = topicConfig(admin, topic, "retention.ms");
        check("3600000".equals(e.value())
                && e.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
            "incrementalAlterConfigs SET: retention.ms=3600000 (dynamic), got " + e);
        get(admin.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(
            new ConfigEntry("retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all());
        e = topicConfig(admin, topic, "retention.ms");
        check(WEEK_MS.equals(e.value()), "incrementalAlterConfigs DELETE: back to default, got " + e);

        ConfigResource b = new ConfigResource(ConfigResource.Type.BROKER, "1");
        Config bc = get(admin.describeConfigs(List.of(b)).all()).get(b);
        check(bc.get("broker.id") != null && "1".equals(bc.get("broker.id").value()),
            "describeConfigs broker 1: broker.id=1, got " + bc);
        check(bc.get("log.retention.ms") != null, "describeConfigs broker 1: log.retention.ms");
        System.out.println("configs ok");
    }

    static Map<TopicPartition, List<Long>> produce(String bootstrap, String topic)
            throws Exception {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "20000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "30000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            for (int i = 0; i < RECORDS; i++) {
                ProducerRecord<String, String> rec =
                    new ProducerRecord<>(topic, i % 4, "key-" + i, "value-" + i);
                rec.headers().add("n", Integer.toString(i).getBytes());
                futures.add(p.send(rec));
            }
            p.flush();
        }
        // Every acknowledgement, per partition in send order: idempotence with acks=all must give
        // each partition dense offsets from 0 in the order the records were sent.
        Map<TopicPartition, List<Long>> sent = new TreeMap<>(
            (a, b) -> Integer.compare(a.partition(), b.partition()));
        for (int i = 0; i < RECORDS; i++) {
            RecordMetadata m = futures.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
            check(m.hasOffset() && m.partition() == i % 4, "send " + i + ": " + m);
            sent.computeIfAbsent(new TopicPartition(topic, m.partition()), k -> new ArrayList<>())
                .add(m.offset());
        }
        for (Map.Entry<TopicPartition, List<Long>> e : sent.entrySet()) {
            List<Long> offs = e.getValue();
            for (int i = 0; i < offs.size(); i++) {
                check(offs.get(i) == i, "producer: dense offsets on " + e.getKey() + ": " + offs);
            }
        }
        System.out.println("producer ok: " + RECORDS + " acknowledged");
        return sent;
    }

    static Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> list(
            Admin admin, Collection<TopicPartition> tps, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (TopicPartition tp : tps) {
            req.put(tp, spec);
        }
        return get(admin.listOffsets(req).all());
    }

    static void offsets(Admin admin, String topic, Map<TopicPartition, List<Long>> sent)
            throws Exception {
        Set<TopicPartition> tps = sent.keySet();
        var latest = list(admin, tps, OffsetSpec.latest());
        var earliest = list(admin, tps, OffsetSpec.earliest());
        var maxTs = list(admin, tps, OffsetSpec.maxTimestamp());
        var earliestLocal = list(admin, tps, OffsetSpec.earliestLocal());
        var latestTiered = list(admin, tps, OffsetSpec.latestTiered());
        var byTime = list(admin, tps, OffsetSpec.forTimestamp(0));
        for (TopicPartition tp : tps) {
            long n = sent.get(tp).size();
            check(latest.get(tp).offset() == n, "listOffsets latest " + tp + ": " + latest.get(tp));
            check(earliest.get(tp).offset() == 0, "listOffsets earliest " + tp);
            check(maxTs.get(tp).offset() >= 0 && maxTs.get(tp).offset() < n,
                "listOffsets max-timestamp " + tp + ": " + maxTs.get(tp));
            check(byTime.get(tp).offset() == 0, "listOffsets by time 0 " + tp);
            // No tiered storage: the local log is the whole log, and nothing is tiered
            // (Kafka answers -1 for latest-tiered when remote storage is off).
            check(earliestLocal.get(tp).offset() == 0, "listOffsets earliest-local " + tp);
            check(latestTiered.get(tp).offset() == -1,
                "listOffsets latest-tiered " + tp + ": " + latestTiered.get(tp));
        }
        System.out.println("listOffsets ok");
    }

    static long deleteRecords(Admin admin, String topic) throws Exception {
        TopicPartition p0 = new TopicPartition(topic, 0);
        long below = 10;
        var lw = get(admin.deleteRecords(Map.of(p0, RecordsToDelete.beforeOffset(below)))
            .lowWatermarks().get(p0));
        check(lw.lowWatermark() == below, "deleteRecords: low watermark " + lw.lowWatermark());
        var earliest = list(admin, List.of(p0), OffsetSpec.earliest());
        check(earliest.get(p0).offset() == below, "deleteRecords: earliest now " + below);
        System.out.println("deleteRecords ok");
        return below;
    }

    static KafkaConsumer<String, String> consumer(String bootstrap, String group) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        // The classic protocol, said explicitly: the broker has no KIP-848 group APIs.
        cp.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG,
            StringDeserializer.class.getName());
        return new KafkaConsumer<>(cp);
    }

    /** Polls until `want` records arrived (or the time is up); records in arrival order. */
    static List<ConsumerRecord<String, String>> pollUntil(
            KafkaConsumer<String, String> c, int want) {
        List<ConsumerRecord<String, String>> got = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (got.size() < want && System.nanoTime() < deadline) {
            for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                got.add(r);
            }
        }
        return got;
    }

    static void groups(Admin admin, String bootstrap, String topic, String group,
            Map<TopicPartition, List<Long>> sent, long deletedBelow) throws Exception {
        TopicPartition p0 = new TopicPartition(topic, 0);
        // What the group can still read: everything, except partition 0 below deletedBelow.
        Map<TopicPartition, Long> start = new HashMap<>();
        int readable = 0;
        for (var e : sent.entrySet()) {
            long s = e.getKey().equals(p0) ? deletedBelow : 0;
            start.put(e.getKey(), s);
            readable += e.getValue().size() - s;
        }
        Map<TopicPartition, OffsetAndMetadata> commit = new HashMap<>();
        Set<String> expectedSecond = new HashSet<>();
        try (KafkaConsumer<String, String> c1 = consumer(bootstrap, group)) {
            c1.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(c1, readable);
            check(got.size() == readable, "consumer 1: " + readable + " records, got " + got.size());
            Set<String> seen = new HashSet<>();
            for (ConsumerRecord<String, String> r : got) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                check(r.offset() >= start.get(tp), "consumer 1: offset below the log start " + r);
                check(seen.add(r.value()), "consumer 1: duplicate " + r.value());
                check(r.value().equals("value-" + r.key().substring(4)), "consumer 1: key/value " + r);
                check(r.headers().lastHeader("n") != null, "consumer 1: header n on " + r);
            }
            // Commit the middle of each partition; the second member must start exactly there.
            for (var e : sent.entrySet()) {
                long mid = (start.get(e.getKey()) + e.getValue().size()) / 2;
                commit.put(e.getKey(), new OffsetAndMetadata(mid, "java-compat"));
            }
            for (ConsumerRecord<String, String> r : got) {
                TopicPartition tp = new TopicPartition(r.topic(), r.partition());
                if (r.offset() >= commit.get(tp).offset()) {
                    expectedSecond.add(r.value());
                }
            }
            c1.commitSync(commit, Duration.ofSeconds(TIMEOUT_S));
            check(c1.committed(commit.keySet(), Duration.ofSeconds(TIMEOUT_S)).equals(commit),
                "consumer 1: committed() reads back the commit");

            // The admin view of the live group.
            Collection<GroupListing> listed =
                get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all());
            check(listed.stream().anyMatch(g -> g.groupId().equals(group)),
                "listGroups lists " + group + ": " + listed);
            ConsumerGroupDescription d =
                get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
            check(d.groupState() == GroupState.STABLE, "describeConsumerGroups: Stable, got " + d);
            check(d.members().size() == 1, "describeConsumerGroups: one member, got " + d);
            MemberDescription m = d.members().iterator().next();
            check(m.assignment().topicPartitions().equals(sent.keySet()),
                "describeConsumerGroups: the member holds every partition, got " + m);
            check(d.coordinator() != null && d.coordinator().id() == 1,
                "describeConsumerGroups: coordinator 1");
            Map<TopicPartition, OffsetAndMetadata> listedOffsets =
                get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
            check(listedOffsets.equals(commit),
                "listConsumerGroupOffsets: " + listedOffsets + ", expected " + commit);
        }
        System.out.println("consumer 1 ok: committed " + commit);

        try (KafkaConsumer<String, String> c2 = consumer(bootstrap, group)) {
            c2.subscribe(List.of(topic));
            List<ConsumerRecord<String, String>> got = pollUntil(c2, expectedSecond.size());
            Set<String> values = new HashSet<>();
            for (ConsumerRecord<String, String> r : got) {
                check(values.add(r.value()), "consumer 2: duplicate " + r.value());
            }
            check(values.equals(expectedSecond), "consumer 2: exactly the records from the "
                + "committed positions on: expected " + expectedSecond.size() + ", got "
                + values.size());
            // Nothing more arrives.
            check(c2.poll(Duration.ofMillis(500)).isEmpty(), "consumer 2: extra records");
            c2.commitSync(Duration.ofSeconds(TIMEOUT_S));
        }
        Map<TopicPartition, OffsetAndMetadata> after =
            get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        for (var e : sent.entrySet()) {
            check(after.get(e.getKey()).offset() == e.getValue().size(),
                "after consumer 2: committed at the end of " + e.getKey() + ": " + after);
        }
        ConsumerGroupDescription d =
            get(admin.describeConsumerGroups(List.of(group)).all()).get(group);
        check(d.groupState() == GroupState.EMPTY && d.members().isEmpty(),
            "describeConsumerGroups after both left: Empty, got " + d);

        // OffsetDelete on an empty group, then DeleteGroups.
        get(admin.deleteConsumerGroupOffsets(group, Set.of(p0)).all());
        after = get(admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata());
        check(!after.containsKey(p0) && after.size() == 3,
            "deleteConsumerGroupOffsets: " + p0 + " gone, got " + after);
        System.out.println("consumer 2 ok: " + expectedSecond.size() + " records");
    }

    static void logDirs(Admin admin, String topic) throws Exception {
        Map<String, LogDirDescription> dirs =
            get(admin.describeLogDirs(List.of(1)).allDescriptions()).get(1);
        check(dirs != null && dirs.size() == 1, "describeLogDirs: one log dir, got " + dirs);
        var replicas = dirs.values().iterator().next().replicaInfos();
        var r1 = replicas.get(new TopicPartition(topic, 1));
        check(r1 != null && r1.size() > 0, "describeLogDirs: " + topic + "-1 has bytes: " + r1);
        System.out.println("describeLogDirs ok");
    }

    static void transactions(String bootstrap) {
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-compat-tx");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "15000");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        long t0 = System.nanoTime();
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp)) {
            p.initTransactions();
            check(false, "initTransactions succeeded against a broker without transactions");
        } catch (TimeoutException e) {
            check(false, "initTransactions: retried until max.block.ms instead of failing: " + e);
        } catch (KafkaException e) {
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            check(ms < 10_000, "initTransactions: refused, but only after " + ms + " ms");
            System.out.println("transactions refused ok (" + ms + " ms): " + e);
        }
    }

    static void cleanup(Admin admin, String topic, String group) throws Exception {
        get(admin.deleteConsumerGroups(List.of(group)).all());
        Collection<GroupListing> listed =
                get(admin.listGroups(ListGroupsOptions.forConsumerGroups()).all());
        check(listed.stream().noneMatch(g -> g.groupId().equals(group)),
            "deleteConsumerGroups: " + group + " gone, got " + listed);
        get(admin.deleteTopics(List.of(topic)).all());
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (get(admin.listTopics().names()).contains(topic)) {
            check(System.nanoTime() < deadline, "deleteTopics: " + topic + " still listed");
            Thread.sleep(100);
        }
        System.out.println("cleanup ok");
    }
}
