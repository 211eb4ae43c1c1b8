"""The web console at /console in a real browser: Debian's chromium, driven headless by
Playwright's Python client (never a downloaded browser build), against the session's gateway,
which `actors.cluster.start` brought up exactly as `memos-cluster up` does.

A user signs in with their key, creates a cube, adds memories, searches, edits with a stale
version (the conflict is shown, nothing is overwritten), reads the diff of the versions,
activates memories and sees them in activation memory; memories that mention people show their
resolved dates and link to the cube's entities, each drawn with its neighbours; another user is
refused the cube; an admin sees health, metrics and the admin view; the page is usable at a
phone's width. Each view
is screenshotted into $MEMOS_ARTIFACTS_DIR (default test-artifacts/console/). Without a browser
the test fails saying so: scripts/test.sh installs chromium.
"""
import os
import shutil
import time
import uuid
from pathlib import Path

import pytest

from memos_cluster.client import API_KEY_ENV, MemosClient
from users import new_users

CHROMIUM = os.environ.get("MEMOS_CHROMIUM", "/usr/bin/chromium")
# The flags a root user on a closed network needs (STACK.md): no sandbox, no background
# connections to Google's hosts.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]
ARTIFACTS = Path(os.environ.get("MEMOS_ARTIFACTS_DIR")
                 or Path(__file__).resolve().parents[2] / "test-artifacts" / "console")
WAIT_MS = 30_000  # the longest a view may take to show (ms): the first search embeds


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        pytest.fail(f"no browser at {CHROMIUM}: install Debian's chromium package "
                    "(scripts/test.sh does: apt-get install chromium) or set MEMOS_CHROMIUM")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def people(running, config):
    """alice and bob, users with a key each, and the admin's key."""
    admin = MemosClient(running.grpc_address, application=config.gateway.app_name)
    made = new_users(admin, ("alice", "bob"))
    yield {name: key for name, (_, key) in made.items()} | {"admin": os.environ[API_KEY_ENV]}
    for user_id, _ in made.values():
        admin.delete_user(user_id)


@pytest.fixture(scope="module")
def base_url(running, config):
    return f"http://127.0.0.1:{config.gateway.http_port}"


class Person:
    """One browser tab with a key: what a person clicks, and the screenshots it leaves."""

    def __init__(self, browser, base_url, key, width=1280, height=800):
        self.page = browser.new_page(viewport={"width": width, "height": height})
        self.page.set_default_timeout(WAIT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.base_url = base_url
        self.page.goto(f"{base_url}/console/")
        self.page.fill("#api-key", key)
        self.page.click("#sign-in")
        self.page.wait_for_selector("#sign-out")

    def go(self, route: str, ready: str):
        self.page.goto(f"{self.base_url}/console/#/{route}")
        try:
            self.page.wait_for_selector(ready)
        except Exception:  # keep what the page showed, for the report
            self.shot(f"failed-{route.replace('/', '_')}")
            raise

    def shot(self, name: str, full_page=True):
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

    def notice(self) -> str:
        return self.page.wait_for_selector("#notice .notice").inner_text()

    def close(self):
        assert not self.errors, f"the page raised: {self.errors}"
        self.page.close()


def test_a_user_keeps_and_edits_memory_and_sees_its_tiers(browser, base_url, people):
    alice = Person(browser, base_url, people["alice"])
    page, cube = alice.page, f"console-{uuid.uuid4().hex[:6]}"
    alice.page.fill("#new-cube-id", cube)
    alice.page.click("#create-cube")
    page.wait_for_selector(f"a.cube-link:text-is('{cube}')")
    alice.shot("1-cubes")

    alice.go(f"memories/{cube}", "#memory-table")
    for text in ("Alice adopted a grey cat called Miso", "Alice runs the Berlin marathon"):
        page.fill("#new-memory-text", text)
        page.click("#add-memory")
        page.wait_for_selector(f"#memory-table td:has-text('{text}')")
    page.fill("#filter-text", "miso")
    page.click("#apply-filters")
    page.wait_for_function("document.querySelector('#page-range').textContent.includes('of 1')")
    assert "grey cat" in page.inner_text("#memory-table") \
        and "marathon" not in page.inner_text("#memory-table")
    alice.shot("2-memories")

    alice.go("search", "#search-query")
    page.check(f"input[name=cubes][value='{cube}']")
    page.fill("#search-query", "which cat did Alice adopt?")
    page.check("#explain")
    page.click("#run-search")
    first = page.wait_for_selector("#search-results tbody tr").inner_text()
    assert "Miso" in first and "dense #" in first and "bm25 #" in first
    assert "fused +" in first and "entity +" in first  # the server's score parts
    alice.shot("3-search")

    # A stale edit: alice opens version 1, someone else saves version 2 meanwhile.
    with MemosClient(base_url, api_key=people["alice"]) as api:
        memory_id = api.search(cube, "Miso", top_k=1)[0].item.id
        alice.go(f"memories/{cube}", f"[data-edit='{memory_id}']")
        page.click(f"[data-edit='{memory_id}']")
        api.update(cube, memory_id, "Alice adopted two cats, Miso and Tofu")
        page.fill("#edit-text", "Alice adopted a black cat called Miso")
        page.click("#save-edit")
        conflict = page.wait_for_selector(".conflict").inner_text()
        assert "version 2" in conflict and "Miso and Tofu" in conflict
        alice.shot("4-edit-conflict")
        assert api.get(cube, [memory_id]).items[0].text == "Alice adopted two cats, Miso and Tofu"
    page.click(f"[data-history='{memory_id}']")
    diff = page.wait_for_selector("#memory-panel .version:last-child .diff")
    assert "two cats" in diff.eval_on_selector("ins", "e => e.textContent")
    assert "grey cat" in diff.eval_on_selector("del", "e => e.textContent")
    alice.shot("5-history")

    # Feedback: the marathon is outdated; its successor is active, it shows as superseded.
    with MemosClient(base_url, api_key=people["alice"]) as api:
        run_id = api.search(cube, "marathon", top_k=1)[0].item.id
    page.click(f"[data-feedback='{run_id}']")
    page.fill("#feedback-text", "Alice runs the Paris marathon now")
    page.click("#feedback-outdated")
    page.wait_for_selector(f"#notice .notice:has-text('{run_id}: superseded')")
    page.wait_for_selector("#memory-table td:has-text('Paris marathon')")
    page.select_option("#filter-state", "superseded")
    page.click("#apply-filters")
    page.wait_for_selector(f"[data-state='{run_id}']")
    assert "Berlin marathon" in page.inner_text("#memory-table")

    alice.go(f"tiers/{cube}", "#activate-selected")
    deadline = time.monotonic() + 30  # access events reach the scheduler off the request path
    while not page.query_selector(f"input[name=tier-pick][value='{memory_id}']"):
        assert time.monotonic() < deadline, "the searched memory never reached the scheduler"
        page.click("text=Refresh")
        page.wait_for_timeout(500)
    page.check(f"input[name=tier-pick][value='{memory_id}']")
    page.click("#activate-selected")
    assert "Activated 1 memory" in alice.notice()
    page.wait_for_selector("td .badge.activation")
    alice.shot("6-tiers")

    alice.go("generate", "#generate-query")
    page.check(f"input[name=cubes][value='{cube}']")
    page.fill("#generate-query", "Which cats did Alice adopt?")
    page.fill("input[name=max_new_tokens]", "8")
    page.click("#run-generate")
    stats = page.wait_for_selector("#generate-stats").inner_text()
    assert "TTFT" in stats and page.inner_text("#answer").strip()
    served = page.inner_text("#generate-after table")
    assert "Miso and Tofu" in served  # the prompt's memories, by text, with their tier
    assert "activation" in served or "plaintext" in served
    alice.shot("11-generate")

    alice.go("chat", "#chat-message")
    page.check(f"input[name=cubes][value='{cube}']")
    page.fill("input[name=max_new_tokens]", "6")
    page.fill("#chat-message", "Which cats did Alice adopt?")
    page.click("#chat-send")
    page.wait_for_selector(".chat-stats")
    first = page.inner_text("#chat-log")
    assert "Miso and Tofu" in first and "prompt tokens reused" in first
    page.fill("#chat-message", "And what are they called?")
    page.click("#chat-send")
    page.wait_for_function("document.querySelectorAll('.chat-stats').length == 2")
    second = page.query_selector_all(".chat-stats")[1].inner_text()
    assert not second.startswith("0 of"), second  # the first turn came from the cache
    alice.shot("12-chat")
    alice.close()


CAROLINE = "Caroline: I went to the LGBTQ support group yesterday."
MELANIE = "Melanie: Caroline and I went camping at the lake last weekend."


def test_memories_link_to_the_entities_they_mention(browser, base_url, people):
    with MemosClient(base_url, api_key=people["alice"]) as api:
        cube = f"people-{uuid.uuid4().hex[:6]}"
        api.create_cube(cube)
    alice = Person(browser, base_url, people["alice"])
    page = alice.page
    alice.go(f"memories/{cube}", "#memory-table")
    for text in (CAROLINE, MELANIE):  # said on 8 May 2023: "yesterday" is 7 May
        page.fill("#new-memory-text", text)
        page.fill("#new-memory-day", "2023-05-08")
        page.click("#add-memory")
        page.wait_for_selector(f"#memory-table td:has-text('{text}')")
    row = page.locator("#memory-table tbody tr", has_text="support group")
    assert "yesterday → 7 May 2023" in row.locator(".date-tag").first.inner_text()
    alice.shot("12-memory-dates")

    # The mention links to the entity: its memories, relations and neighbourhood graph.
    row.locator("a.entity-link", has_text="Caroline").first.click()
    page.wait_for_selector("#entity-graph svg .graph-node.neighbour")
    assert page.inner_text("#entity-title") == "Caroline"
    assert page.evaluate("location.hash").startswith(f"#/entities/{cube}/")
    assert "support group" in page.inner_text("#entity-memories")
    assert page.locator("#entity-graph .graph-node.centre").count() == 1
    alice.shot("14-entity")
    neighbour = page.locator("#entity-graph .graph-node.neighbour").first
    target = neighbour.get_attribute("data-entity")
    neighbour.locator("circle").click()  # a node opens that entity
    page.wait_for_function("t => decodeURIComponent(location.hash).endsWith('/' + t)", arg=target)
    page.wait_for_function("document.querySelector('#entity-title')?.textContent !== 'Caroline'")

    alice.go(f"entities/{cube}", "#entity-table table")
    names = page.inner_text("#entity-table")
    assert "Caroline" in names and "Melanie" in names
    page.fill("#entity-label", "PERSON")
    page.click("#apply-entity-filters")
    page.wait_for_function(
        "!document.querySelector('#entity-table').textContent.includes('support group')")
    labels = page.query_selector_all("#entity-table .entity-label")
    assert {b.inner_text() for b in labels} == {"PERSON"}
    alice.shot("13-entities")
    page.fill("#entity-label", "")
    page.fill("#entity-name", "mel")
    page.click("#apply-entity-filters")
    page.wait_for_function(
        "document.querySelector('#entity-page-range').textContent.includes('of 1')")
    assert "Melanie" in page.inner_text("#entity-table") \
        and "Caroline" not in page.inner_text("#entity-table")
    alice.close()

    phone = Person(browser, base_url, people["alice"], width=390, height=844)
    phone.go(f"entities/{cube}/Caroline", "#entity-graph svg")  # a name works as well as an id
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.page.mouse.move(0, 0)  # off the graph, which lies where the sign-in button was
    phone.shot("15-phone-entity")
    phone.close()


def test_another_user_is_refused_and_sees_why(browser, base_url, people):
    with MemosClient(base_url, api_key=people["alice"]) as api:
        cube = f"private-{uuid.uuid4().hex[:6]}"
        api.create_cube(cube)
        api.add(cube, ["Alice's door code is 4711"])
    bob = Person(browser, base_url, people["bob"])
    assert cube not in bob.page.inner_text("#main")
    bob.go(f"memories/{cube}", "#memory-table .notice.error")
    assert "PERMISSION_DENIED" in bob.page.inner_text("#memory-table")
    assert "4711" not in bob.page.content()
    bob.shot("7-refused")
    bob.close()


def test_an_admin_sees_health_metrics_and_keys(browser, base_url, people):
    admin = Person(browser, base_url, people["admin"])
    cube = f"ops-{uuid.uuid4().hex[:6]}"
    with MemosClient(base_url, api_key=people["admin"]) as api:
        api.create_cube(cube)
    admin.go(f"tiers/{cube}", "#scheduler-pause")  # pause and resume: other tests see no change
    admin.page.click("#scheduler-pause")
    admin.page.wait_for_selector("#scheduler-resume")
    assert "paused" in admin.page.inner_text("#scheduler")
    admin.page.click("#scheduler-resume")
    admin.page.wait_for_selector("#scheduler-pause")
    admin.go("health", "#health svg")
    assert "Operations" in admin.page.inner_text("#health")
    admin.shot("8-health")
    admin.go("admin", "#create-key")
    admin.page.fill("#new-key-name", "console-test")
    admin.page.click("#create-key")
    key = admin.page.wait_for_selector("#new-key-value").inner_text()
    with MemosClient(base_url, api_key=key) as fresh:
        assert fresh.whoami().role == "admin"  # the key shown once works
    admin.shot("9-admin")
    admin.close()
    phone = Person(browser, base_url, people["admin"], width=390, height=844)
    phone.go("cubes", "#create-cube")
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    phone.shot("10-phone-cubes", full_page=False)
    phone.close()
