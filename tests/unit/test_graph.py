"""A cube's entity graph (tiers/plaintext/graph.py): resolution, the listing, an entity's
neighbourhood, and memories coming and going. Pure bookkeeping, no Milvus."""
from memos_cluster.core.structure import EntityMention, EntityQuery, MemoryStructure, Relation
from memos_cluster.tiers.plaintext.graph import (
    CubeGraph, entity_id_for, normalise, resolve_mentions)


def mention(name, label="PERSON", span=None):
    return EntityMention(span or name, 0, len(span or name), name, label)


def structure(*mentions, relations=()):
    return MemoryStructure(entities=tuple(mentions), relations=tuple(relations))


def test_names_normalise_and_ids_are_stable_and_url_safe():
    assert normalise("The Lake's") == "lake"
    assert normalise("  LGBTQ   support-group ") == "lgbtq support group"
    assert entity_id_for("c", "Caroline") == entity_id_for("c", "caroline")
    assert entity_id_for("c", "Caroline") != entity_id_for("d", "Caroline")
    assert entity_id_for("c", "Zoë & Co / 😀").replace("-", "").isalnum()


def test_resolution_exact_then_fuzzy_then_short_name_then_embedding():
    graph = CubeGraph("c")
    asked = []

    def embed_match(pending):
        asked.extend(pending)
        return [graph.find("Melanie") if name == "Mellie Smith" else None
                for name, _ in pending]
    first, _ = resolve_mentions(graph, [structure(mention("Caroline"), mention("Melanie"),
                                                  mention("pottery classes", "CONCEPT"))],
                                embed_match)
    caroline = first[0].entities[0].entity_id
    later, changed = resolve_mentions(graph, [structure(
        mention("caroline", "NAME"),          # exact, whatever the label
        mention("pottery class", "CONCEPT"),  # fuzzy
        mention("Mel"),                       # the start of one person's name
        mention("Mellie Smith"))], embed_match)  # left to the embedding step
    ids = [m.entity_id for m in later[0].entities]
    assert ids[0] == caroline
    assert ids[1] == first[0].entities[2].entity_id
    assert ids[2] == ids[3] == graph.find("Melanie")
    assert [name for name, _ in asked[-1:]] == ["Mellie Smith"]  # only what the rest missed
    assert set(graph.entities[ids[2]].aliases) == {"Mel", "Mellie Smith"}
    assert ids[2] in changed and caroline not in changed


def test_a_person_tag_wins_over_the_phrase_rule():
    graph = CubeGraph("c")
    resolve_mentions(graph, [structure(mention("Caroline", "NAME"))])
    [s], changed = resolve_mentions(graph, [structure(mention("Caroline", "PERSON"))])
    assert graph.entities[s.entities[0].entity_id].label == "PERSON"
    assert s.entities[0].entity_id in changed


def _graph_with_memories():
    graph = CubeGraph("c")
    memories = {
        "m1": structure(mention("Caroline"), mention("LGBTQ support group", "CONCEPT"),
                        relations=[Relation("Caroline", "go to", "LGBTQ support group")]),
        "m2": structure(mention("Melanie"), mention("Caroline"), mention("camping", "CONCEPT")),
        "m3": structure(mention("Melanie"), mention("pottery", "CONCEPT")),
    }
    for i, (memory_id, s) in enumerate(memories.items()):
        [resolved], _ = resolve_mentions(graph, [s])
        graph.put_memory(memory_id, resolved, 1000 * i)
    return graph


def test_listing_is_by_mentions_filtered_and_paged():
    graph = _graph_with_memories()
    page = graph.page(EntityQuery("c"), page_size=2)
    assert [(e.name, e.num_mentions) for e in page.entities] == [("Caroline", 2), ("Melanie", 2)]
    assert page.next_offset == 2 and page.total == 5
    assert [e.name for e in graph.page(EntityQuery("c", offset=4), 2).entities] == ["pottery"]
    assert [e.name for e in graph.page(EntityQuery("c", name_contains="MEL"), 9).entities] == \
        ["Melanie"]
    assert {e.name for e in graph.page(EntityQuery("c", label="CONCEPT"), 9).entities} == \
        {"LGBTQ support group", "camping", "pottery"}


def test_an_entity_has_its_memories_relations_and_neighbours_and_follows_deletes():
    graph = _graph_with_memories()
    caroline = graph.find("caroline")
    memory_ids, relations, neighbours = graph.detail_parts(caroline, 10)
    assert memory_ids == ["m2", "m1"]  # newest event first
    assert [(r.subject, r.predicate, r.object, r.memory_id) for r in relations] == \
        [("Caroline", "go to", "LGBTQ support group", "m1")]
    assert {n.entity.name: n.num_shared for n in neighbours} == \
        {"LGBTQ support group": 1, "Melanie": 1, "camping": 1}
    graph.remove_memory("m1")
    assert graph.num_mentions(caroline) == 1
    assert graph.detail_parts(caroline, 10)[1] == []
    graph.remove_memory("m2")
    assert "Caroline" not in [e.name for e in graph.page(EntityQuery("c"), 9).entities]
    assert graph.find("Caroline") == caroline  # the entity stays, unmentioned


def test_a_candidate_word_joins_a_known_entity_and_makes_no_new_one():
    graph = CubeGraph("c")
    resolve_mentions(graph, [structure(mention("Caroline"))])
    [s], _ = resolve_mentions(graph, [structure(mention("Caroline", "CANDIDATE"),
                                                mention("Thanks", "CANDIDATE"))])
    assert s.entities[0].entity_id == graph.find("Caroline")
    assert s.entities[1].entity_id == "" and graph.find("Thanks") is None


def test_a_short_name_first_takes_the_full_name_when_it_comes():
    graph = CubeGraph("c")
    [first], _ = resolve_mentions(graph, [structure(mention("Mel"))])
    [later], changed = resolve_mentions(graph, [structure(mention("Melanie"))])
    mel = first.entities[0].entity_id
    assert later.entities[0].entity_id == mel and mel in changed
    assert graph.entities[mel].name == "Melanie" and graph.entities[mel].aliases == ["Mel"]
    assert graph.find("mel") == graph.find("Melanie") == mel


def test_a_short_name_and_its_full_name_in_one_batch_are_one_person():
    graph = CubeGraph("c")
    [a, b], _ = resolve_mentions(graph, [structure(mention("Mel")), structure(mention("Melanie"))])
    assert a.entities[0].entity_id == b.entities[0].entity_id
    assert graph.entities[a.entities[0].entity_id].name == "Melanie"


def test_a_short_name_matches_one_person_only_and_follows_a_rename():
    graph = CubeGraph("c")
    resolve_mentions(graph, [structure(mention("Melanie"), mention("Melissa"),
                                       mention("Caroline"))])
    assert graph.match_short_name("Mel") is None  # Melanie or Melissa: not guessed
    assert graph.match_short_name("Melan") == graph.find("Melanie")
    assert graph.match_short_name("Caroline") is None  # a full name is no short name
    assert graph.match_short_name("Me") is None  # under 3 characters
    graph.rename(graph.find("Melissa"), "Zelda")
    assert graph.match_short_name("Mel") == graph.find("Melanie")
    assert graph.match_short_name("Zel") == graph.find("Zelda")
