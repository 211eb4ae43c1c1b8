"""A LoCoMo-shaped sample (one session) for tests that ingest or score conversations."""


def locomo_sample(sample_id: str, turns: list[dict], qa: list[dict]) -> dict:
    """turns: {"speaker", "dia_id", "text"} of session 1, dated 8 May 2023; qa: LoCoMo's."""
    return {"sample_id": sample_id, "qa": qa, "conversation": {
        "speaker_a": "Ann", "speaker_b": "Bo",
        "session_1_date_time": "1:56 pm on 8 May, 2023", "session_1": turns}}
