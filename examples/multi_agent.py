"""A multi-agent run on memos-cluster through the Ray transport: several agent actors share a team
cube and keep private cubes; each writes observations, then searches the team's shared memory for
what the others saw, and the driver prints a short summary.

Each agent is a user of its own with its own API key: the driver (an admin: MEMOS_API_KEY) creates
them, owns the team cube and shares it with each agent for writing; an agent's private cube is
its own, and the run checks that another agent is refused (PERMISSION_DENIED).

Run it against the embedded local cluster (starts one on a temporary data dir, then stops it):

    .venv/bin/python examples/multi_agent.py --local

or as a Ray job on a running cluster (`memos-cluster --set ray.include_dashboard=true up`):

    ray job submit --address http://127.0.0.1:8265 \
        --runtime-env-json '{"env_vars": {"MEMOS_API_KEY": "<an admin key>"}}' \
        -- .venv/bin/python examples/multi_agent.py

The agents hold no memos-cluster actor by hand: each makes `MemosClient("ray://")`, which finds the
gateway application on the cluster it runs on. Exit status 0 only if every agent found what its
teammates shared and the team cube holds only the shared observations.
"""
from __future__ import annotations

import argparse
import sys
import time
import uuid

import ray

from memos_cluster.client import MemosClient
from memos_cluster.core.errors import PermissionDenied
from memos_cluster.core.types import NewMemory

# What each agent observes: (shared with the team, kept private).
OBSERVATIONS = {
    "scout": ("The north bridge is washed out after the storm",
              "I still owe the quartermaster two rations"),
    "medic": ("Three villagers at the mill have a fever and need antibiotics",
              "My own supply of bandages is nearly gone"),
    "engineer": ("The generator at the mill needs a new fuel filter",
                 "I dropped my spare wrench somewhere near the river"),
    "cook": ("The granary holds enough flour for ten more days",
             "I burned the soup yesterday and nobody noticed"),
}
# What each agent asks the team memory, and the teammate whose observation answers it.
QUESTIONS = {
    "scout": ("who is sick at the mill?", "medic"),
    "medic": ("how long will the food last?", "cook"),
    "engineer": ("can we cross the river to the north?", "scout"),
    "cook": ("what part does the generator need?", "engineer"),
}


@ray.remote(num_cpus=0)
class Agent:
    """One agent: its own private cube plus the team cube, both reached through `ray://`."""

    def __init__(self, name: str, team_cube: str, app: str, run_id: str, api_key: str):
        self.name = name
        self.team_cube = team_cube
        self.private_cube = f"agent-{name}-{run_id}"
        self.client = MemosClient(f"ray://?app={app}", api_key=api_key)

    def observe(self) -> int:
        shared, private = OBSERVATIONS[self.name]
        self.client.create_cube(self.private_cube, description=f"{self.name}'s private memory")
        self.client.add(self.private_cube, [NewMemory(private, id="note-1")])
        result = self.client.add(self.team_cube, [
            NewMemory(shared, id=f"{self.name}-1", metadata={"author": self.name},
                      source="observation")])
        return result.num_inserted + 1

    def ask_team(self) -> dict:
        question, expected_author = QUESTIONS[self.name]
        hits = self.client.search(self.team_cube, question, top_k=1)
        top = hits[0].item if hits else None
        return {"agent": self.name, "question": question,
                "answer": top.text if top else None,
                "author": top.metadata.get("author") if top else None,
                "expected_author": expected_author}

    def pry(self, other_private_cube: str) -> bool:
        """Try to read another agent's private cube; True if refused, as it must be."""
        try:
            self.client.search(other_private_cube, "what do you keep to yourself?")
        except PermissionDenied:
            return True
        return False

    def cleanup(self) -> None:
        self.client.delete_cube(self.private_cube)


def make_agents(client: MemosClient, team_cube: str, app: str, run_id: str) -> list:
    """A user and key per agent, with write access to the team cube."""
    agents = []
    for name in OBSERVATIONS:
        user_id = f"agent-{name}-{run_id}"
        client.create_user(user_id)
        _, api_key = client.create_key(user_id, name=f"{name} agent")
        client.share_cube(team_cube, user_id, "write")
        agents.append(Agent.remote(name, team_cube, app, run_id, api_key))
    return agents


def run(app: str) -> int:
    """Who calls it: main(), on a driver connected to the cluster. Returns the exit status."""
    run_id = uuid.uuid4().hex[:8]
    team_cube = f"team-{run_id}"
    client = MemosClient(f"ray://?app={app}")
    client.create_cube(team_cube, description="the team's shared memory")
    agents = make_agents(client, team_cube, app, run_id)
    start = time.perf_counter()
    try:
        written = sum(ray.get([a.observe.remote() for a in agents]))
        answers = ray.get([a.ask_team.remote() for a in agents])
        team_size = client.get_cube(team_cube).num_memories
        names = list(OBSERVATIONS)
        refused = sum(ray.get([agent.pry.remote(f"agent-{names[(i + 1) % len(names)]}-{run_id}")
                               for i, agent in enumerate(agents)]))
    finally:
        ray.get([a.cleanup.remote() for a in agents])
        client.delete_cube(team_cube)
        for name in OBSERVATIONS:
            client.delete_user(f"agent-{name}-{run_id}")
    elapsed_s = time.perf_counter() - start
    correct = sum(a["author"] == a["expected_author"] for a in answers)
    print(f"{len(agents)} agents wrote {written} memories ({team_size} shared) in {elapsed_s:.2f} s")
    for a in answers:
        mark = "ok " if a["author"] == a["expected_author"] else "MISS"
        print(f"  [{mark}] {a['agent']:<9} asked {a['question']!r}: {a['answer']!r} "
              f"(from {a['author']})")
    print(f"summary: {correct}/{len(answers)} agents found their teammate's observation; "
          f"team cube holds {team_size} memories (expected {len(agents)}: private notes stay "
          "private)")
    print(f"isolation: {refused}/{len(agents)} agents were refused another agent's private cube")
    return 0 if (correct == len(answers) and team_size == len(agents)
                 and refused == len(agents)) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--local", action="store_true",
                        help="start the embedded local cluster for this run, then stop it")
    parser.add_argument("--app", default="memos", help="the Serve application (gateway.app_name)")
    args = parser.parse_args(argv)
    if args.local:
        from actors.cluster import temporary_cluster
        from memos_cluster.core.config import MemosConfig

        with temporary_cluster(MemosConfig(), prefix="memos-agents-"):
            return run(args.app)
    ray.init(address="auto", log_to_driver=False)
    return run(args.app)


if __name__ == "__main__":
    sys.exit(main())
