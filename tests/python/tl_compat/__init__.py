"""TransformerLens-compatibility harness: TL-style scripts run on TransformerLens 2.10.0
(the reference environment) and on mechlens, outputs compared value by value.

    folders.py   the model folders: the golden HF folders (gpt2 with a GPT-2 BPE tokenizer cut to
                 its 500 ids; llama_sp = the golden llama grown to the golden SentencePiece model's
                 800 pieces, with that tokenizer; gpt_neox and llama without a tokenizer)
    load_tl.py   TransformerLens's loader for a local HF folder (the reference README's workarounds)
    load_ml.py   mechlens's loader with the same processing flags
    scripts.py   the TL-style scripts, written against transformer_lens: script(model) -> outputs
                 (nested dict / list / tensor / str / number)
    run_side.py  runs every script on one side (mechlens: the scripts' source with "transformer_lens"
                 replaced by "mechlens", as the acceptance tests do) and torch.save()s the outputs
    compare.py   compares two sides' outputs (values to 1e-4, shapes, dtypes, types, labels)

By hand (two processes; the same /usr/bin/python3):

    source ../shared/reference/env.sh
    $REFPY tests/python/tl_compat/run_side.py tl /tmp/tl.pt /tmp/tlc
    PYTHONPATH=build/python /usr/bin/python3 tests/python/tl_compat/run_side.py mechlens /tmp/ml.pt /tmp/tlc
    /usr/bin/python3 tests/python/tl_compat/compare.py /tmp/tl.pt /tmp/ml.pt

tests/python/test_tl_compat.py does the same under pytest.
"""
