"""A batch written to a slow database keeps the chunks already acknowledged when an attempt times out."""
from pymongo.errors import ExecutionTimeout

from chaos_dr_stack.events import encode_event, token_event
from chaos_dr_stack.processor import loop as loop_module
from chaos_dr_stack.processor.batching import Record, plan_batch
from chaos_dr_stack.processor.loop import ConsumeLoop
from chaos_dr_stack.processor.settings import ProcessorSettings


def batch_of(n: int):
    records = [Record("token-events", 0, seq, encode_event(token_event("p-1", seq, produced_at=100.0 + seq,
                                                                        model="m", tokens_in=1, tokens_out=2)))
               for seq in range(1, n + 1)]
    return plan_batch(records, consumed_at=200.0)


def test_a_timed_out_chunk_is_retried_alone_and_acknowledged_chunks_are_not_resent(monkeypatch):
    sent: list[list[str]] = []
    fail_once = {"p-1:5"}

    def write_events(_db, plan, written_at, keys):
        sent.append(list(keys))
        if fail_once & set(keys):
            fail_once.clear()
            raise ExecutionTimeout("operation exceeded time limit")
        return set(keys)

    monkeypatch.setattr(loop_module.store, "write_events", write_events)
    monkeypatch.setattr(loop_module.store, "write_gpu_latest", lambda *_: None)
    settings = ProcessorSettings(name="processor-t", bootstrap="127.0.0.1:1", mongo_uri="mongodb://x",
                                 write_chunk_size=4)
    consume = ConsumeLoop(settings, db=None, producer=None, on_fatal=lambda exc: None)

    assert consume._write(batch_of(10)) is True
    keys = [f"p-1:{seq}" for seq in range(1, 11)]
    assert sent == [keys[0:4], keys[4:8], keys[4:8], keys[8:10]], "only the chunk that timed out is sent again"
