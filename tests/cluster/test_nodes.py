"""Placement and failures on a simulated multi-node cluster, under load: a killed shard actor
and a removed node. Each drill ends with an audit: every acknowledged write readable exactly
once. Bounded: load runs seconds, recovery waits at most RECOVERY_DEADLINE_S."""
import time

from memos_cluster.bench.write_load import PROBE_ID, WriteLoad, audit, seed_cubes, wait_writable

RECOVERY_DEADLINE_S = 120
NUM_CUBES = 6


def check(client, seeded, report, probed):
    """Seeds, acknowledged load writes and the probe: all there once, nothing else."""
    expected = {c: seeded[c] | report.acked[c] | ({PROBE_ID} if c == probed else set())
                for c in seeded}
    result = audit(client, expected)
    assert result.ok, result
    assert not report.failures, report.failures
    assert report.searches > 0


def test_shards_are_spread_over_the_nodes_that_offer_shard_resources(client, sim):
    head = sim.nodes.head_node.node_id
    status = client.shards()
    nodes = [s.node_id for s in status.shards]
    assert len(nodes) == 2 and len(set(nodes)) == 2, nodes
    assert head not in nodes
    assert all(s.is_ok and s.in_ring for s in status.shards)


def test_a_shard_actor_killed_under_load_loses_no_acknowledged_write(client, sim):
    cubes, seeded = seed_cubes(client, "killed", NUM_CUBES, 4)
    victim = client.get_cube(cubes[0]).shard_id
    with WriteLoad(sim.address, cubes, writers=2, tag="k") as load:
        time.sleep(1.5)
        started = time.monotonic()
        sim.kill_shard(victim)
        recovery_s = wait_writable(client, cubes[0], started, RECOVERY_DEADLINE_S)
        time.sleep(1.5)
    print(f"shard actor kill: writes to {victim} acknowledged again after {recovery_s:.1f} s; "
          f"{load.report.refused} refused attempts retried; stalls {load.report.stalls}")
    check(client, seeded, load.report, probed=cubes[0])
    for cube in cubes:
        client.delete_cube(cube)


def test_a_removed_node_has_its_shard_recreated_elsewhere_with_every_write(client, sim):
    sim.add_worker()  # somewhere for the lost shard to go
    cubes, seeded = seed_cubes(client, "node-loss", NUM_CUBES, 4)
    victim_cube = cubes[0]
    victim = client.get_cube(victim_cube).shard_id
    with WriteLoad(sim.address, cubes, writers=2, tag="n") as load:
        time.sleep(1.5)
        started = time.monotonic()
        node_id = sim.remove_node_of(victim)
        recovery_s = wait_writable(client, victim_cube, started, RECOVERY_DEADLINE_S)
        time.sleep(1.5)
    print(f"node loss: {victim} re-created; writes acknowledged again after {recovery_s:.1f} s; "
          f"{load.report.refused} refused attempts retried; stalls {load.report.stalls}")
    check(client, seeded, load.report, probed=victim_cube)
    moved_to = next(s.node_id for s in client.shards().shards if s.shard_id == victim)
    assert moved_to != node_id
    for cube in cubes:
        client.delete_cube(cube)
