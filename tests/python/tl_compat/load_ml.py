"""mechlens's side: the same folder, the same processing flags as TL's loader."""


def load(folder: str, processed: bool, **flags):
    from mechlens import HookedTransformer

    if processed:
        return HookedTransformer.from_pretrained(folder, device="cpu", **flags)
    return HookedTransformer.from_pretrained_no_processing(folder, device="cpu")
