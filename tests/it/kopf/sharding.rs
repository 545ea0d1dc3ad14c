//! Scale-out: one operator as four replicas on one cluster, each owning a quarter of the uid hash
//! space through the API server's sharded list and watch (`settings.watching.shard_selectors`,
//! `kopf::Shard`). Every object is handled once, by its owner; a crashed replica's objects wait for
//! it and are handled when it returns; a server without the feature gate sends every replica
//! everything, and the replicas say so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kopf::{Context, HandlerError, Operator, Shard};
use kopf_testing::{KopfRunner, OperatorHandle, Runner};
use serde_json::json;

use crate::common::*;

const REPLICAS: u64 = 4;

/// What the handlers did: `(replica, uid)` per start and per completion.
#[derive(Debug, Default, Clone)]
struct Work {
    started: Vec<(u64, String)>,
    done: Vec<(u64, String)>,
}

type Log = Arc<Mutex<Work>>;

fn snapshot(log: &Log) -> Work {
    log.lock().unwrap().clone()
}

/// Who pokes whom: replica `.0` pokes `.1` whenever one of its handlers starts.
type Poke = Option<(u64, Arc<tokio::sync::Notify>)>;

/// Replica `i` of four: a create handler that takes a second of (virtual) work and records who
/// ran it.
fn replica(i: u64, log: &Log, poke: Poke) -> Operator {
    let log = log.clone();
    Operator::new()
        .on_create(move |ex: Arc<KopfExample>, _ctx: Context| {
            let log = log.clone();
            let poke = poke.clone();
            async move {
                let uid = ex.metadata.uid.clone().unwrap_or_default();
                log.lock().unwrap().started.push((i, uid.clone()));
                if let Some((who, notify)) = &poke
                    && *who == i
                {
                    notify.notify_one();
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                log.lock().unwrap().done.push((i, uid));
                Ok::<_, HandlerError>(json!({"replica": i}))
            }
        })
        .id("create_fn")
        .settings(move |s| {
            let shard = Shard::new(i, REPLICAS).expect("a valid shard");
            s.watching.shard_selectors.insert_everything(shard.selector());
        })
}

/// Starts replica 0 as the runner's operator and replicas 1–3 beside it.
async fn four_replicas(log: &Log, gate: bool, poke: Poke) -> (Runner, Vec<OperatorHandle>) {
    let runner = KopfRunner::new(replica(0, log, poke.clone()))
        .with_crd::<KopfExample>()
        .seed(23)
        .configure_server(move |server| server.sharded_list_and_watch(gate))
        .start()
        .await;
    let mut others = Vec::new();
    for i in 1..REPLICAS {
        others.push(runner.spawn_operator(&format!("replica-{i}"), replica(i, log, poke.clone())).await);
    }
    (runner, others)
}

async fn create(runner: &Runner, range: std::ops::Range<usize>) -> BTreeMap<String, String> {
    let mut uids = BTreeMap::new();
    for n in range {
        let ex = runner.cluster().create(example(&format!("ex{n:04}"), "value")).await;
        uids.insert(ex.metadata.name.clone().unwrap(), ex.metadata.uid.clone().unwrap());
    }
    uids
}

fn owner(uid: &str) -> u64 {
    let owners: Vec<u64> = (0..REPLICAS).filter(|i| Shard::new(*i, REPLICAS).unwrap().owns(uid)).collect();
    assert_eq!(owners.len(), 1, "the shards cover {uid} once");
    owners[0]
}

/// Which objects each replica received as watch events or listings (from the timeline's `[label]`
/// prefixes; replica 0 is the runner's own operator, unlabelled).
fn seen_by_replica(runner: &Runner) -> BTreeMap<u64, BTreeSet<String>> {
    let mut seen: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for entry in runner.timeline().of_kind("watch") {
        let (replica, text) = match entry.text.strip_prefix("[replica-") {
            Some(rest) => {
                let (n, text) = rest.split_once("] ").expect("a labelled line");
                (n.parse().unwrap(), text.to_owned())
            }
            None => (0, entry.text.clone()),
        };
        let object = text.split(' ').nth(2).expect("EVENT resource ns/name rv=…");
        let name = object.rsplit('/').next().unwrap().to_owned();
        seen.entry(replica).or_default().insert(name);
    }
    seen
}

/// Per-replica counts of 1,000 uniformly hashed objects over four equal shards: binomial with
/// mean 250 and standard deviation √(1000·¼·¾) ≈ 13.7; five deviations either side.
fn within_spread(counts: &BTreeMap<u64, usize>, total: usize) {
    let mean = total as f64 / REPLICAS as f64;
    let sd = (total as f64 * 0.25 * 0.75).sqrt();
    for (replica, n) in counts {
        assert!((*n as f64 - mean).abs() <= 5.0 * sd, "replica {replica} has {n} of {total}: {counts:?}");
    }
    assert_eq!(counts.values().sum::<usize>(), total);
}

#[tokio::test(start_paused = true)]
async fn four_sharded_replicas_handle_each_of_1000_objects_exactly_once_by_its_owner() {
    let log = Log::default();
    let (runner, _others) = four_replicas(&log, true, None).await;
    let uids = create(&runner, 0..1000).await;
    runner.settle().await;

    let work = snapshot(&log);
    let mut done: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (replica, uid) in &work.done {
        done.entry(uid.as_str()).or_default().push(*replica);
    }
    assert_eq!(done.len(), 1000, "every object handled");
    for (name, uid) in &uids {
        assert_eq!(done[uid.as_str()], vec![owner(uid)], "{name} handled once, by its owner");
    }
    assert_eq!(work.started.len(), 1000, "no handler started twice");
    let mut counts = BTreeMap::new();
    for (replica, _) in &work.done {
        *counts.entry(*replica).or_insert(0usize) += 1;
    }
    within_spread(&counts, 1000);

    // The server sent each replica its own objects only.
    let names_by_uid: BTreeMap<&str, &str> = uids.iter().map(|(n, u)| (u.as_str(), n.as_str())).collect();
    let seen = seen_by_replica(&runner);
    for replica in 0..REPLICAS {
        let mine: BTreeSet<String> = names_by_uid
            .iter()
            .filter(|(uid, _)| owner(uid) == replica)
            .map(|(_, name)| (*name).to_owned())
            .collect();
        assert_eq!(seen.get(&replica), Some(&mine), "replica {replica} received its shard only");
    }
    // The result each replica stored tells who handled the object.
    let stored: Vec<KopfExample> = runner.cluster().list().await;
    for ex in stored {
        let uid = ex.metadata.uid.clone().unwrap();
        assert_eq!(status(&ex)["create_fn"], json!({"replica": owner(&uid)}));
    }
    assert!(runner.timeline().of_kind("warning").is_empty(), "the server honoured every selector");
}

#[tokio::test(start_paused = true)]
async fn a_crashed_replica_leaves_its_range_unhandled_until_it_restarts_and_then_nothing_is_lost() {
    let log = Log::default();
    let poke = Arc::new(tokio::sync::Notify::new());
    let (runner, mut others) = four_replicas(&log, true, Some((2, poke.clone()))).await;
    let mut uids = create(&runner, 0..600).await;
    runner.settle().await;
    assert_eq!(log.lock().unwrap().done.len(), 600);
    let before_crash = log.lock().unwrap().started.iter().filter(|(r, _)| *r == 2).count();

    // Replica 2 (others[1]) crashes while handling the next batch: once its 5th new handler began.
    let nth = before_crash + 5;
    let poked = {
        let log = log.clone();
        let poke = poke.clone();
        async move {
            loop {
                let notified = poke.notified();
                if log.lock().unwrap().started.iter().filter(|(r, _)| *r == 2).count() >= nth {
                    break;
                }
                notified.await;
            }
        }
    };
    uids.extend(create(&runner, 600..800).await);
    poked.await;
    others[1].crash().await;
    let interrupted: BTreeSet<String> = {
        let work = log.lock().unwrap();
        let done: BTreeSet<&String> = work.done.iter().map(|(_, u)| u).collect();
        work.started.iter().filter(|(r, u)| *r == 2 && !done.contains(u)).map(|(_, u)| u.clone()).collect()
    };
    assert!(!interrupted.is_empty(), "the crash came mid-handler");

    // While it is down, more objects come; the other replicas handle theirs, its own wait.
    uids.extend(create(&runner, 800..1000).await);
    runner.settle().await;
    let shard2: BTreeSet<&String> = uids.values().filter(|u| owner(u) == 2).collect();
    {
        let work = snapshot(&log);
        let done: BTreeSet<&String> = work.done.iter().map(|(_, u)| u).collect();
        for (name, uid) in &uids {
            let handled = done.contains(uid);
            if owner(uid) != 2 || name.as_str() < "ex0600" {
                assert!(handled, "{name}: its replica is up");
            } else {
                assert!(!handled, "{name}: its replica is down, nobody else takes it");
            }
        }
    }
    for (name, uid) in &uids {
        if owner(uid) == 2 && name.as_str() >= "ex0600" {
            let ex: KopfExample = runner.cluster().get(name).await;
            assert!(
                !annotations(&ex).contains_key("kopf.zalando.org/last-handled-configuration"),
                "{name} is untouched while replica 2 is down"
            );
        }
    }

    // Back up: it lists its range and finishes everything, the interrupted handlers again.
    others[1].start().await;
    runner.settle().await;
    let work = snapshot(&log);
    let mut done: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (replica, uid) in &work.done {
        done.entry(uid.as_str()).or_default().push(*replica);
    }
    assert_eq!(done.len(), 1000, "nothing lost");
    for (name, uid) in &uids {
        assert_eq!(done[uid.as_str()], vec![owner(uid)], "{name} completed once, by its owner");
    }
    let mut starts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, uid) in &work.started {
        *starts.entry(uid.as_str()).or_default() += 1;
    }
    for uid in uids.values() {
        let expected = if interrupted.contains(uid) { 2 } else { 1 };
        assert_eq!(starts[uid.as_str()], expected, "{uid}: started again only if the crash cut it short");
    }
    assert!(shard2.len() > interrupted.len());
}

#[tokio::test(start_paused = true)]
async fn without_the_feature_gate_every_replica_receives_every_object_and_warns() {
    let log = Log::default();
    let (runner, _others) = four_replicas(&log, false, None).await;
    let uids = create(&runner, 0..1000).await;
    runner.settle().await;

    let seen = seen_by_replica(&runner);
    let all: BTreeSet<String> = uids.keys().cloned().collect();
    for replica in 0..REPLICAS {
        assert_eq!(seen.get(&replica), Some(&all), "replica {replica} received everything");
    }
    let warnings = runner.timeline().of_kind("warning");
    assert_eq!(warnings.len(), REPLICAS as usize, "{warnings:?}");
    assert!(warnings.iter().all(|w| w.text.contains("unsharded list of kopfexamples.kopf.dev")));
    let work = snapshot(&log);
    let handled: BTreeSet<&String> = work.done.iter().map(|(_, u)| u).collect();
    assert_eq!(handled.len(), 1000, "every object handled");
    assert!(
        work.done.len() > 1000,
        "with nothing to split them, replicas handle objects twice or more: {} runs",
        work.done.len()
    );
}

/// Peering (Kopf 1.45.2): peers of one priority pause each other — unless they are sharded, for
/// then they are replicas sharing the work; a peer of a higher priority still pauses them.
#[tokio::test(start_paused = true)]
async fn sharded_replicas_of_one_priority_do_not_pause_each_other_but_a_higher_peer_pauses_them() {
    let log: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let peer = |name: &str, priority: i64, shard: Option<Shard>| {
        let (name, log) = (name.to_owned(), log.clone());
        Operator::new()
            .on_create(move |ex: Arc<KopfExample>, _ctx: Context| {
                let (name, log) = (name.clone(), log.clone());
                async move {
                    log.lock().unwrap().push((name, ex.metadata.uid.clone().unwrap_or_default()));
                    Ok::<_, HandlerError>(())
                }
            })
            .id("create_fn")
            .settings(move |s| {
                s.peering.priority = priority;
                if let Some(shard) = shard {
                    s.watching.shard_selectors.insert_everything(shard.selector());
                }
            })
    };
    let runner = KopfRunner::new(Operator::new().settings(|s| s.peering.standalone = true))
        .with_crd::<KopfExample>()
        .with_peering_crds()
        .with_objects([kopf::peering::object("default", None)])
        .start()
        .await;
    let _replicas = [
        runner.spawn_operator("replica-0", peer("replica-0", 5, Some(Shard::new(0, 2).unwrap()))).await,
        runner.spawn_operator("replica-1", peer("replica-1", 5, Some(Shard::new(1, 2).unwrap()))).await,
    ];
    runner.settle().await;
    let uids = create(&runner, 0..20).await;
    runner.settle().await;
    let mut by: Vec<(String, String)> = log.lock().unwrap().clone();
    by.sort_by(|a, b| a.1.cmp(&b.1));
    let mut expected: Vec<(String, String)> = uids
        .values()
        .map(|uid| {
            let owner = (0..2).find(|i| Shard::new(*i, 2).unwrap().owns(uid)).unwrap();
            (format!("replica-{owner}"), uid.clone())
        })
        .collect();
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(by, expected, "both replicas run, each on its shard, though of one priority");

    let _boss = runner.spawn_operator("boss", peer("boss", 10, None)).await;
    runner.settle().await;
    log.lock().unwrap().clear();
    let later = create(&runner, 20..30).await;
    runner.settle().await;
    let handlers: BTreeSet<String> = log.lock().unwrap().iter().map(|(who, _)| who.clone()).collect();
    assert_eq!(handlers, BTreeSet::from(["boss".to_owned()]), "the replicas pause for the higher peer");
    assert_eq!(log.lock().unwrap().len(), later.len());
}
