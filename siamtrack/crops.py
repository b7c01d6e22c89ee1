"""Frame normalisation, exemplar and search crop geometry, and the two ways to cut crops.

Frames are HxWx3 uint8 BGR everywhere outside the model: `as_bgr_uint8` brings grayscale, BGRA, 16-bit and float
frames there once, and the crop step is where they become the model's float RGB input.

Geometry (SiamFC, Bertinetto et al. 2016): the exemplar side is s_z = sqrt((w + p)(h + p)) with context
p = context_amount * (w + h); the search side is s_x = s_z * search_size / exemplar_size. A crop is the square of side
`size` frame pixels centred on (cx, cy), resampled to `out_size` pixels; what falls outside the frame is the frame's
per-channel mean.

Coordinates are continuous: pixel i covers [i, i + 1), so output pixel j of a crop samples the frame at
cx + (j + 0.5 - out_size / 2) * size / out_size. Both paths below use exactly that mapping:
- `crop_numpy`: cv2.warpAffine on a uint8 BGR frame. warpAffine only visits the output pixels, so the cost does not
  depend on the frame size.
- `crop_torch`: grid_sample on a frame tensor that already lives on a device (a GPU), so frames cross to the device
  once and crops never come back to the host.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import FrameError


def as_bgr_uint8(frame) -> np.ndarray:
    """Normalise a frame to HxWx3 uint8 BGR; raises FrameError for what cannot be a frame."""
    if not isinstance(frame, np.ndarray):
        raise FrameError(f"a frame must be a numpy array, got {type(frame).__name__}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)) or min(frame.shape[:2]) < 1:
        raise FrameError(f"a frame must be HxW, HxWx3 or HxWx4, got shape {frame.shape}")
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    elif frame.dtype != np.uint8:
        if not np.issubdtype(frame.dtype, np.number):
            raise FrameError(f"unsupported frame dtype {frame.dtype}")
        f = np.nan_to_num(frame.astype(np.float32))
        if f.size and f.max() <= 1.0:
            f = f * 255.0
        frame = np.clip(f, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.shape[2] == 4:
        frame = np.ascontiguousarray(frame[:, :, :3])
    return frame


def exemplar_size(w, h, context_amount=0.5):
    """Side of the exemplar square in frame pixels (s_z)."""
    p = context_amount * (w + h)
    return float(np.sqrt((w + p) * (h + p)))


def _inverse_affine(cx, cy, size, out_size):
    # Maps output pixel indices to frame pixel indices (pixel centres at integer + 0.5 in continuous coordinates).
    a = size / out_size
    bx = cx + (0.5 - out_size / 2) * a - 0.5
    by = cy + (0.5 - out_size / 2) * a - 0.5
    return np.array([[a, 0.0, bx], [0.0, a, by]], dtype=np.float64)


def crop_numpy(frame, cx, cy, size, out_size, pad_color, out=None):
    """One square crop of a HxWx3 uint8 frame; returns out_size x out_size x 3 uint8 (written into `out` if given)."""
    m = _inverse_affine(cx, cy, size, out_size)
    border = tuple(float(c) for c in pad_color)
    return cv2.warpAffine(frame, m, (out_size, out_size), dst=out,
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def crop_batch_numpy(frame, centers, sizes, out_size, pad_color, out=None):
    """N crops; `centers` (N, 2), `sizes` (N,). Returns (N, out, out, 3) uint8, reusing `out` when it fits."""
    n = len(sizes)
    if out is None or out.shape != (n, out_size, out_size, 3):
        out = np.empty((n, out_size, out_size, 3), dtype=np.uint8)
    for i in range(n):
        crop_numpy(frame, centers[i][0], centers[i][1], sizes[i], out_size, pad_color, out=out[i])
    return out


def frame_to_tensor(frame, device):
    """HxWx3 uint8 BGR numpy frame -> (3, H, W) float32 RGB tensor on `device` (one host-to-device copy)."""
    t = torch.from_numpy(np.ascontiguousarray(frame)).to(device)
    return t.permute(2, 0, 1).flip(0).float()


def crop_torch(frame_t, centers, sizes, out_size, pad_color):
    """N crops of a (3, H, W) float tensor by bilinear grid_sample; returns (N, 3, out, out) float.

    `pad_color` is in the tensor's channel order. Subtracting it before sampling and adding it back makes the zero
    padding of grid_sample equal to mean-colour padding.
    """
    device, dtype = frame_t.device, frame_t.dtype
    _, h, w = frame_t.shape
    centers = torch.as_tensor(np.asarray(centers, dtype=np.float64), dtype=dtype, device=device).reshape(-1, 2)
    sizes = torch.as_tensor(np.asarray(sizes, dtype=np.float64), dtype=dtype, device=device).reshape(-1)
    n = sizes.shape[0]
    pad = torch.as_tensor(np.array(pad_color, dtype=np.float64), dtype=dtype, device=device).view(3, 1, 1)
    steps = (torch.arange(out_size, dtype=dtype, device=device) + 0.5 - out_size / 2) / out_size  # (out,)
    xs = centers[:, 0:1] + steps[None] * sizes[:, None]  # (N, out) continuous frame coordinates
    ys = centers[:, 1:2] + steps[None] * sizes[:, None]
    # grid_sample with align_corners=False: -1 is the left edge of pixel 0, +1 the right edge of pixel W-1.
    gx = (2 * xs / w - 1)[:, None, :].expand(n, out_size, out_size)
    gy = (2 * ys / h - 1)[:, :, None].expand(n, out_size, out_size)
    grid = torch.stack([gx, gy], dim=-1)
    src = (frame_t - pad).unsqueeze(0).expand(n, -1, -1, -1)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + pad


def crops_to_tensor(crops, device=None, channels_last=True):
    """(N, H, W, 3) uint8 BGR crops -> (N, 3, H, W) float32 RGB tensor, values 0..255. On the CPU the tensor is
    channels-last in memory (what the torch backend runs in), or contiguous NCHW with `channels_last` off (what
    onnxruntime takes without another copy)."""
    if device is not None and torch.device(device).type != "cpu":
        t = torch.from_numpy(crops).to(device)
        return t.permute(0, 3, 1, 2).flip(1).float().contiguous()
    # One single-threaded numpy pass flips BGR to RGB and converts to float: torch's threaded kernels on arrays this
    # small cost several times more, and far more when other processes share the cores.
    if channels_last:
        return torch.from_numpy(crops[..., ::-1].astype(np.float32)).permute(0, 3, 1, 2)
    n, h, w, _ = crops.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    np.copyto(out, crops.transpose(0, 3, 1, 2)[:, ::-1], casting="unsafe")
    return torch.from_numpy(out)
