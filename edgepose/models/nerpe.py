"""NerPE head: continuous heatmap regression with an implicit neural representation.

Hu et al., "Continuous Heatmap Regression for Pose Estimation via Implicit Neural
Representation" (NeurIPS 2024). The backbone's last feature map becomes a fixed grid of
``grid_rows x round(grid_rows * W / H)`` cells (8 x 8 for square inputs, 8 x 6 at 256x192) so
every input size shares one decoder; an MLP maps (cell feature, offset of the query from the
cell centre) to K joint confidences at *any* point of the crop, blended over the 4 nearest
cells (local ensemble, see ``nerpe_decoding.py`` for the geometry).

Training regresses sampled query points to exp(-|c - c_gt|^2 / 2 sigma^2) (normalised
units) times visibility; inference decodes by a dense grid argmax or by the progressive
coarse-to-fine search (NerPE-p), inside the graph so it exports to ONNX.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from edgepose.coords import norm_to_pixel, pixel_to_norm_xy
from edgepose.errors import ModelError
from edgepose.models import nerpe_decoding as dec
from edgepose.models.neck import check_soft_weight, teacher_sees


@dataclass(frozen=True)
class NerPEConfig:
    """Head construction settings (``ModelMeta.head_cfg``).

    ``samples_per_cell`` trades training speed for target coverage: the paper uses 64; 16
    keeps 64x64 / 128x128 training to minutes on a 2-core CPU (use 64 on a GPU).
    ``sigma`` (Gaussian) and ``laplace_b`` (Laplace target) are in normalised units.
    """

    feat_dim: int = 256
    hidden: tuple[int, ...] = (256, 256, 128, 128, 128)
    grid_rows: int = 8
    local_ensemble: bool = True
    pos_freqs: int = 0
    samples_per_cell: int = 16
    sampling: str = "uniform"
    target: str = "gaussian"
    sigma: float = 0.06
    laplace_b: float = 0.09
    # "conv": strided convs to the grid (the paper's adapter). "movenet": MoveNet's own
    # keypoint-heatmap head (separable conv + 1x1, from the imported MoveNet file) at the
    # trunk's resolution, its K logit maps rearranged losslessly into the cells
    # (space-to-depth: K x r^2 channels per cell), then a 1x1 to feat_dim. The MLP then reads
    # what MoveNet's head knows at full resolution and learns to interpolate it: the equal
    # start of issue 29 (a strided-conv adapter loses the sub-cell position and cannot be
    # fitted to MoveNet's head in a CPU budget: torso PCK@0.2 0.21 vs 0.82 after 300 batches).
    adapter: str = "conv"
    # Dense teacher targets (issue 29 item 3): at each query, (1 - w) x the labels' target +
    # w x the teacher's heatmap sampled there (data source ``maps``, best at a fine
    # ``data.maps_stride``); joints nobody labelled but the teacher sees (peak >=
    # neck.SOFT_MIN_PEAK) take the teacher's alone. 0 = labels only.
    soft_weight: float = 0.0

    @classmethod
    def from_kwargs(cls, cfg: dict) -> "NerPEConfig":
        known = {f.name for f in fields(cls)}
        extra = sorted(set(cfg) - known)
        if extra:
            raise ModelError(f"unknown nerpe head_cfg key(s) {extra}; known: {sorted(known)}")
        cfg = dict(cfg)
        if "hidden" in cfg:
            cfg["hidden"] = tuple(int(v) for v in cfg["hidden"])
        c = cls(**cfg)
        if c.target not in ("gaussian", "laplace"):
            raise ModelError(f"unknown nerpe target {c.target!r}; choose 'gaussian' or 'laplace'")
        if c.adapter not in ("conv", "movenet"):
            raise ModelError(f"unknown nerpe adapter {c.adapter!r}; choose 'conv' or 'movenet'")
        check_soft_weight(c.soft_weight)
        if c.sampling not in ("uniform", "random"):
            raise ModelError(f"unknown nerpe sampling {c.sampling!r}; "
                             "choose 'uniform' or 'random'")
        return c

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def grid_cells(input_size: tuple[int, int], rows: int = 8) -> tuple[int, int]:
    """(rows, cols) of the feature grid: (8, round(8 W / H)); 256x192 -> (8, 6)."""
    h, w = input_size
    return rows, max(1, int(round(rows * w / h)))


def _conv_bn_relu(conv: nn.Module, ch: int) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]


class GridAdapter(nn.Module):
    """Backbone map (B, C_in, H/s, W/s) -> feature grid (B, feat_dim, gh, gw).

    Power-of-two size ratios use 3x3 stride-2 convs (map larger than the grid) or 4x4
    stride-2 transposed convs (smaller); any other ratio falls back to a bilinear resize.
    A final 1x1 conv sets ``feat_dim`` channels.
    """

    def __init__(self, in_channels: int, in_stride: int, input_size: tuple[int, int],
                 grid_hw: tuple[int, int], feat_dim: int):
        super().__init__()
        fh = math.ceil(input_size[0] / in_stride)
        fw = math.ceil(input_size[1] / in_stride)
        self.grid_hw = grid_hw
        layers: list[nn.Module] = []
        ch = in_channels
        self.resize = False
        rh, rw = fh / grid_hw[0], fw / grid_hw[1]
        if rh == rw and rh >= 1 and float(rh).is_integer() and _is_pow2(int(rh)):
            for _ in range(int(math.log2(rh))):
                layers += _conv_bn_relu(nn.Conv2d(ch, feat_dim, 3, 2, 1, bias=False), feat_dim)
                ch = feat_dim
        elif rh == rw and rh < 1 and (1 / rh).is_integer() and _is_pow2(int(1 / rh)):
            for _ in range(int(math.log2(1 / rh))):
                layers += _conv_bn_relu(
                    nn.ConvTranspose2d(ch, feat_dim, 4, 2, 1, bias=False), feat_dim)
                ch = feat_dim
        else:
            self.resize = True
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(ch, feat_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        if self.resize:
            x = F.interpolate(x, size=self.grid_hw, mode="bilinear", align_corners=False)
        return self.proj(x)


class MoveNetGridAdapter(nn.Module):
    """Trunk map (B, C, h, w) -> MoveNet's K heatmap logits (separable 3x3 + 1x1 + ReLU, 1x1)
    -> space-to-depth into the (gh, gw) cells (B, K r^2, gh, gw) -> 1x1 -> (B, feat_dim, gh,
    gw). ``r = h / gh`` must be a whole number (4 at 128 px, 2 at 64 px on a stride-4 trunk)."""

    def __init__(self, in_channels: int, in_stride: int, input_size: tuple[int, int],
                 grid_hw: tuple[int, int], feat_dim: int, num_joints: int):
        super().__init__()
        from edgepose.models.neck import movenet_heatmap_layers

        fh = math.ceil(input_size[0] / in_stride)
        fw = math.ceil(input_size[1] / in_stride)
        if fh % grid_hw[0] or fw % grid_hw[1] or fh // grid_hw[0] != fw // grid_hw[1]:
            raise ModelError(f"nerpe adapter 'movenet': the {fh}x{fw} trunk map does not divide "
                             f"into the {grid_hw[0]}x{grid_hw[1]} grid; use adapter 'conv'")
        self.r = fh // grid_hw[0]
        self.neck, self.final = movenet_heatmap_layers(in_channels, in_stride, num_joints)
        self.proj = nn.Conv2d(num_joints * self.r * self.r, feat_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.final(self.neck(x))
        return self.proj(F.pixel_unshuffle(logits, self.r))


def _is_pow2(n: int) -> bool:
    return n >= 1 and (n & (n - 1)) == 0


class NerPEHead(nn.Module):
    """NerPE head following the contract in ``edgepose/models/pose_model.py``."""

    def __init__(self, in_channels: int, in_stride: int, input_size: tuple[int, int],
                 num_joints: int, decoder: dict | None = None, **head_cfg):
        super().__init__()
        self.cfg = NerPEConfig.from_kwargs(head_cfg)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.num_joints = int(num_joints)
        self.grid_hw = grid_cells(self.input_size, self.cfg.grid_rows)
        if self.cfg.adapter == "movenet":
            self.adapter = MoveNetGridAdapter(in_channels, in_stride, self.input_size,
                                              self.grid_hw, self.cfg.feat_dim, num_joints)
        else:
            self.adapter = GridAdapter(in_channels, in_stride, self.input_size, self.grid_hw,
                                       self.cfg.feat_dim)
        self.mlp = dec.QueryMLP(self.cfg.feat_dim, self.cfg.hidden, num_joints,
                                self.cfg.pos_freqs)
        self.decoder = dec.DecoderSettings.from_dict(decoder)

    def init_from_movenet(self, path) -> str:
        """Adapter 'movenet': its heatmap layers take MoveNet's kpt_heatmap_0 from the
        imported MoveNet file ``path`` ("" for another adapter or weights file)."""
        from edgepose.models.neck import init_from_movenet

        if self.cfg.adapter != "movenet":
            return ""
        done = init_from_movenet(self.adapter.neck, self.adapter.final, path)
        return f"{done} in the grid adapter" if done else ""

    # ------------------------------------------------------------------ inference

    def set_decoder(self, decoder: dict | None) -> None:
        """Change the inference decoding (no weights involved)."""
        self.decoder = dec.DecoderSettings.from_dict(decoder)

    def feature_grid(self, feats) -> torch.Tensor:
        """Backbone output (tensor, or list/tuple whose last item is used) -> (B, D, gh, gw)."""
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        return self.adapter(feats)

    def confidences(self, feats, coords: torch.Tensor, ensemble: bool | None = None):
        """Blended confidences (B, N, K) at normalised query points (B, N, 2)."""
        return self.confidences_from_grid(self.feature_grid(feats), coords, ensemble)

    def confidences_from_grid(self, grid: torch.Tensor, coords: torch.Tensor,
                              ensemble: bool | None = None) -> torch.Tensor:
        """Like :meth:`confidences` on a precomputed grid (B, D, gh, gw); ``ensemble=False``
        uses the nearest cell only (for comparison; the model is trained with its setting)."""
        use = self.cfg.local_ensemble if ensemble is None else ensemble
        return dec.query(grid, coords, self.mlp, use)

    def decode_grid(self, grid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature grid -> (peak (B, K, 2) normalised, raw peak value (B, K))."""
        s = self.decoder
        ens = self.cfg.local_ensemble
        if s.mode == "dense":
            return dec.decode_dense(grid, self.mlp, dec.aspect_size(s.resolution,
                                                                    self.input_size), ens)
        return dec.decode_progressive(grid, self.mlp, dec.aspect_size(s.coarse, self.input_size),
                                      s.r, s.overlap, s.steps, ens)

    def forward(self, feats) -> tuple[torch.Tensor, torch.Tensor]:
        """coords (B, K, 2) in input pixels, scores (B, K) = peak confidence in [0, 1]."""
        peak, value = self.decode_grid(self.feature_grid(feats))
        h, w = self.input_size
        coords = torch.stack([norm_to_pixel(peak[..., 0], w), norm_to_pixel(peak[..., 1], h)],
                             dim=-1)
        return coords, value.clamp(0.0, 1.0)

    # ------------------------------------------------------------------ training

    def forward_train(self, feats, batch: dict) -> dict[str, torch.Tensor]:
        """Sample ``samples_per_cell`` queries per cell and evaluate every ensemble neighbour.

        Returns ``queries`` (B, N, 2) normalised, ``preds`` (B, E, N, K) per neighbour and
        ``weights`` (B, E, N) (E = 4 with local ensemble, else 1).
        """
        grid = self.feature_grid(feats)
        q = dec.sample_queries(self.grid_hw, grid.shape[0], self.cfg.samples_per_cell,
                               self.cfg.sampling).to(grid.device, grid.dtype)
        preds, weights = dec.query_neighbours(grid, q, self.mlp, self.cfg.local_ensemble)
        return {"queries": q, "preds": preds, "weights": weights}

    def targets(self, queries: torch.Tensor, batch: dict) -> torch.Tensor:
        """(B, N, K) target confidences at queries (B, N, 2) for the batch's keypoints."""
        h, w = self.input_size
        kp = batch["keypoints"].to(queries.dtype)
        gt = pixel_to_norm_xy(kp, w, h)  # (B, K, 2)
        vis = batch["visible"].to(queries.dtype)  # (B, K)
        d2 = ((queries.unsqueeze(2) - gt.unsqueeze(1)) ** 2).sum(-1)  # (B, N, K)
        if self.cfg.target == "gaussian":
            t = torch.exp(-d2 / (2.0 * self.cfg.sigma ** 2))
        else:
            t = torch.exp(-torch.sqrt(d2 + 1e-12) / self.cfg.laplace_b)
        return t * vis.unsqueeze(1)

    def _soft_targets(self, queries, batch, target, seen):
        """Mix the teacher's maps, bilinearly sampled at the queries (normalised coordinates
        put the map's edges at +-1, grid_sample's align_corners=False), into ``target``."""
        maps = batch["teacher_maps"].to(queries.dtype)  # (B, K, h, w)
        mask = batch["teacher_mask"] > 0  # (B,)
        soft = F.grid_sample(maps, queries[:, :, None, :], mode="bilinear",
                             padding_mode="zeros", align_corners=False)[..., 0]  # (B, K, N)
        soft = soft.transpose(1, 2)  # (B, N, K)
        sees = teacher_sees(maps, mask)  # (B, K)
        w = self.cfg.soft_weight
        mixed = torch.where(seen[:, None, :], (1.0 - w) * target + w * soft, soft)
        target = torch.where((sees | seen)[:, None, :] & mask[:, None, None], mixed, target)
        return target, seen | sees

    def loss(self, train_out: dict, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """0.5 * MSE of every neighbour's prediction against the target (not only the blend),
        over the visible joints only: an unlabelled joint's queries are masked out (its
        confidence map is not pushed to 0), averaged per visible (person, joint)."""
        target = self.targets(train_out["queries"], batch)  # (B, N, K)
        preds = train_out["preds"]
        seen = batch["visible"] > 0
        if self.cfg.soft_weight and batch.get("teacher_maps") is not None:
            target, seen = self._soft_targets(train_out["queries"], batch, target, seen)
        target = target.unsqueeze(1)  # (B, 1, N, K)
        vis = seen.to(preds.dtype)[:, None, None, :]  # (B, 1, 1, K)
        per = preds[..., :1].numel() / preds.shape[0]  # E * N query evaluations per joint
        denom = (vis.sum() * per).clamp_min(1.0)
        loss = 0.5 * (((preds - target) ** 2) * vis).sum() / denom
        with torch.no_grad():
            blend = (preds * train_out["weights"].unsqueeze(-1)).sum(1)
            blend_mse = ((((blend - target[:, 0]) ** 2) * vis[:, 0]).sum()
                         / (vis.sum() * blend.shape[1]).clamp_min(1.0)).item()
        return loss, {"nerpe_mse": float(loss.item()), "blend_mse": blend_mse}
