"""Chat with memory through the gateway: the Chat operation over every transport, and the
OpenAI-compatible route driven by OpenAI's own Python client (JSON and streaming, usage with
cached tokens, errors in OpenAI's shape). Exactness against a full prefill is asserted in
tests/unit/test_chat_engine.py on the same engine."""
import os
import re

import openai
import pytest

from memos_cluster.client import MemosClient
from memos_cluster.core.errors import InvalidArgument
from memos_cluster.core.tier_types import ChatMessage, ChatStats, TokenEvent
from memos_cluster.core.types import NewMemory

from conftest import client_address

NOTES = [NewMemory(f"Day {i}: the {colour} lantern was lit in the {place}", id=f"n{i}")
         for i, (colour, place) in enumerate([("red", "tower"), ("blue", "cellar"),
                                              ("green", "garden"), ("amber", "attic")])]


def chat(client, cube, messages, **kw):
    events = list(client.chat(cube, messages, max_new_tokens=kw.pop("max_new_tokens", 6), **kw))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    (stats,) = [e for e in events if isinstance(e, ChatStats)]
    assert events[-1] is stats and len(tokens) == stats.generate.num_generated
    assert stats.answer == "".join(t.text for t in tokens)
    return stats


def test_a_conversation_reuses_its_cache_and_remembers_each_turn_once(client, cube):
    client.add(cube, NOTES)
    first = [ChatMessage("user", "I lit the lantern in the tower today.", "ann")]
    one = chat(client, cube, first)
    # (Other tests' chats may share the opening piece, the system message's first line.)
    assert one.generate.prefill_tokens_saved < 10 and one.generate.memories
    assert {m.tier for m in one.generate.memories} == {"plaintext"}
    second = first + [ChatMessage("assistant", one.answer),
                      ChatMessage("user", "Which lantern was lit in the cellar?")]
    two = chat(client, cube, second)
    # Turn 1's prompt and answer come from the cache; its memories stay where they were.
    g1 = one.generate
    assert two.generate.prefill_tokens_saved == g1.prompt_tokens + g1.num_generated
    assert [m.memory_id for m in two.generate.memories][:len(g1.memories)] == \
        [m.memory_id for m in g1.memories]
    assert {m.tier for m in two.generate.memories[:len(g1.memories)]} == {"activation"}
    # Each turn was remembered as its speaker said it; a retried turn stores nothing twice.
    user, answer = client.get(cube, list(one.remembered)).items
    assert user.text == "ann: I lit the lantern in the tower today." and user.source == "chat"
    assert answer.text == f"Assistant: {one.answer}"
    count = client.get_cube(cube).num_memories
    again = chat(client, cube, first)
    assert again.remembered == one.remembered and client.get_cube(cube).num_memories == count
    # Turn 1's remembered memories are never placed back into the same conversation.
    assert not set(one.remembered) & {m.memory_id for m in two.generate.memories}
    quiet = chat(client, cube, [ChatMessage("user", "Nothing new today.")], remember=False)
    assert quiet.remembered == () and client.get_cube(cube).num_memories == count
    # A question is not remembered (nor its answer): it tells nothing.
    assert two.remembered == () and client.get_cube(cube).num_memories == count


@pytest.mark.parametrize("messages, says", [
    ([], "messages must hold at least one message"),
    ([ChatMessage("robot", "hi")], "messages[0].role must be one of system, user, assistant"),
    ([ChatMessage("user", "hi"), ChatMessage("assistant", "hello")],
     "the last message must be the user's"),
    ([ChatMessage("user", "  ")], "messages[0].content must not be empty"),
])
def test_bad_conversations_are_refused_clearly_and_store_nothing(client, cube, messages, says):
    with pytest.raises(InvalidArgument, match=re.escape(says)):
        chat(client, cube, messages)
    assert client.get_cube(cube).num_memories == 0


@pytest.fixture
def openai_client(running, config):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{config.gateway.http_port}/v1",
                         api_key=os.environ["MEMOS_API_KEY"], max_retries=0, timeout=60)


@pytest.fixture
def oa_cube(running, config):
    with MemosClient(client_address("grpc", running, config)) as memos:
        memos.create_cube("openai-chat")
        memos.add("openai-chat", NOTES)
        yield "openai-chat"
        memos.delete_cube("openai-chat")


def test_the_openai_client_chats_with_memory_streaming_and_not(openai_client, oa_cube, config):
    model = config.activation.model
    assert [m.id for m in openai_client.models.list().data] == [model]
    messages = [{"role": "system", "content": "Answer briefly."},
                {"role": "user", "content": "Which lantern was lit in the garden?"}]
    extra = {"memos": {"cube_ids": [oa_cube], "remember": False}}
    first = openai_client.chat.completions.create(model=model, messages=messages,
                                                  max_tokens=5, extra_body=extra)
    answer = first.choices[0].message.content
    assert first.object == "chat.completion" and first.choices[0].finish_reason in (
        "stop", "length")
    assert first.usage.completion_tokens <= 5 and first.usage.prompt_tokens > 0
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert first.model_extra["memos"]["memories"]  # the memories the answer drew on
    messages += [{"role": "assistant", "content": answer},
                 {"role": "user", "content": "And in the attic?"}]
    stream = openai_client.chat.completions.create(
        model=model, messages=messages, max_tokens=5, stream=True,
        stream_options={"include_usage": True}, extra_body=extra)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and text
    assert usage.completion_tokens >= sum(1 for c in chunks if c.choices
                                          and c.choices[0].delta.content)
    # Turn 1's prompt and answer were reused.
    assert usage.prompt_tokens_details.cached_tokens >= first.usage.total_tokens


def test_openai_errors_come_in_openais_shape(openai_client, oa_cube, config):
    model = config.activation.model
    extra = {"memos": {"cube_ids": [oa_cube]}}
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="gpt-5", messages=[
            {"role": "user", "content": "hi"}], extra_body=extra)
    assert caught.value.body["param"] == "model" and "GET /v1/models" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=[], extra_body=extra)
    assert caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:  # no cube named
        openai_client.chat.completions.create(model=model, messages=[
            {"role": "user", "content": "hi"}])
    assert caught.value.body["param"] == "memos.cube_ids"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=[
            {"role": "user", "content": "hi"}], max_tokens=10 ** 6, extra_body=extra)
    assert caught.value.body["param"] == "max_new_tokens"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model=model, messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            extra_body=extra)
    assert caught.value.body["param"] == "messages[0].content"
    stranger = openai.OpenAI(base_url=str(openai_client.base_url), api_key="wrong",
                             max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    with MemosClient(f"http://127.0.0.1:{config.gateway.http_port}") as memos:
        assert memos.get_cube(oa_cube).num_memories == len(NOTES)  # nothing was stored


def test_a_stranger_and_a_broken_body_are_refused_and_nothing_is_stored(running, config,
                                                                         oa_cube):
    import json
    import urllib.error
    import urllib.request

    from users import new_users

    url = f"http://127.0.0.1:{config.gateway.http_port}/v1"
    with MemosClient(client_address("grpc", running, config)) as admin:
        (user_id, key), = new_users(admin, ("mallory",)).values()
        try:
            stranger = openai.OpenAI(base_url=url, api_key=key, max_retries=0)
            with pytest.raises(openai.PermissionDeniedError) as caught:
                stranger.chat.completions.create(
                    model=config.activation.model, extra_body={"memos": {"cube_ids": [oa_cube]}},
                    messages=[{"role": "user", "content": "I like tea."}])
            assert oa_cube in caught.value.message
        finally:
            admin.delete_user(user_id)
        request = urllib.request.Request(
            f"{url}/chat/completions", data=b'{"messages": [{"role": "user", "content": "\xff"}]}',
            headers={"Authorization": f"Bearer {os.environ['MEMOS_API_KEY']}"}, method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        body = json.loads(caught.value.read())
        assert caught.value.code == 400 and body["error"]["type"] == "invalid_request_error"
        assert admin.get_cube(oa_cube).num_memories == len(NOTES)
