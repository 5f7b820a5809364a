"""Recognising an out-of-memory failure of one frame, and giving the memory back."""
import gc

OUT_OF_MEMORY_MESSAGES = ('out of memory', 'failed to allocate memory', "can't allocate memory",
                          'cannot allocate memory', 'insufficient memory')


def is_out_of_memory(error: BaseException) -> bool:
    """Return whether ``error`` says that host or GPU memory ran out.

    Covers ``MemoryError``, ``torch.cuda.OutOfMemoryError`` (a RuntimeError), PyTorch's CPU
    allocator, ONNX Runtime and OpenCV, which all say so in their messages.
    """
    if isinstance(error, MemoryError) or type(error).__name__ == 'OutOfMemoryError':
        return True
    text = str(error).lower()
    return any(message in text for message in OUT_OF_MEMORY_MESSAGES)


def release_memory(device=None) -> None:
    """Collect garbage and return cached GPU blocks to the driver (on CUDA devices)."""
    gc.collect()
    if getattr(device, 'type', '') != 'cuda':
        return
    import torch
    torch.cuda.empty_cache()
