"""A seeded synthetic contrast-enhanced (portal-venous) abdominal CT phantom, LiTS-style.

It is the embedded default dataset: the whole workflow runs on it on a CPU laptop, so it has to look like CT
(air, skin, subcutaneous fat, abdominal wall, spine and ribs, aorta/IVC, kidneys, spleen, stomach and bowel
with gas, lung bases above the diaphragm, a textured liver with bright vessels) and its tumors have to be
visible but not trivial (see docs / notes/calibration.md: a fully supervised 2D U-Net should land around
Dice 0.5-0.7, and methods should differ).

Storage follows DICOM-derived CT (as most LiTS volumes): voxel index i grows toward the patient's LEFT, j
toward POSTERIOR, k toward SUPERIOR; the affine is diag(-sx, -sy, sz) (RAS world, nibabel convention), so the
liver sits at small i and the spine at large j. Labels follow LiTS: 0 background, 1 liver, 2 tumor, with
tumor inside the liver region (the liver label covers the tumor; an exophytic tumor that bulges out of the
liver is labeled tumor where it bulges, so "liver region" = liver + tumor).

Each case is drawn from ``np.random.default_rng([seed, case_id])``: a case depends only on the parameters
and its own id (plus whether it is in :func:`tumor_free_cases`), never on the other cases.

Knobs (all fields of :class:`PhantomParams`; ranges ``(lo, hi)`` are drawn uniformly per case or per tumor;
defaults live in ``schemas/config.schema.yaml``):

- ``n_volumes``, ``seed``: how many cases, and the seed every case derives its generator from.
- ``matrix``: in-plane voxels (256 keeps the CPU workflow cheap; 512 is what real LiTS stores).
- ``fov_mm``: in-plane field of view; spacing = fov / matrix (real scanners adapt the FOV to the patient).
- ``slice_thickness_mm``: slice spacing; thick slices (4-5 mm) are the LiTS majority and keep slice counts low.
- ``z_margin_mm``: extent scanned above and below the liver (the volume is liver + margins, as in a liver scan
  cropped by the downstream slice selection anyway; more margin = more slices = more CPU).
- ``liver_height_mm``: craniocaudal liver extent (adults: ~130-180 mm).
- ``subcutaneous_fat_mm``: body habitus (thin to obese), changes how much of the FOV is fat.
- ``liver_hu``: mean enhanced parenchyma in portal-venous phase (~90-120 HU).
- ``liver_texture_sd``: sd (HU) of the low-frequency parenchymal heterogeneity; comparable to subtle lesions'
  contrast so that intensity alone does not find them.
- ``vessel_hu``: enhanced portal/hepatic veins, aorta (~150-200 HU); after blur small vessels are fainter.
- ``tumor_free_fraction``: share of cases with no tumor (false positives on them are a reported metric).
- ``tumor_count``: tumors per tumor-bearing case (integer range, inclusive); >1 gives multifocal cases.
- ``tumor_diameter_mm``: lesion diameter range, drawn uniformly (log-uniform draws left most cases with
  under 1 mL of tumor, 1-2 pixels per lesion at 128x128: nothing to learn from a 10% labeled set).
- ``tumor_type_mix``: probabilities of hypo / iso / hyper-dense lesions (normalised): hypodense dominates in
  portal phase (metastases, most HCC wash-out), iso lesions are the subtle ones, hyper are the "other sign".
- ``contrast_hypo``: lesion minus liver (HU) for hypodense lesions (negative).
- ``contrast_iso``: |lesion minus liver| (HU) for isodense lesions; the sign is random.
- ``contrast_hyper``: lesion minus liver (HU) for hyperdense lesions (positive).
- ``rim_probability``, ``rim_contrast``: share of lesions with an enhancing rim, and rim minus liver (HU).
- ``necrosis_probability``: share of hypodense lesions >= 15 mm with a darker, fluid-like core.
- ``surface_tumor_probability``: share of lesions centred near the liver surface (they bulge out of it).
- ``noise_sd``, ``noise_corr_mm``: quantum noise sd (HU) after in-plane correlation with a Gaussian kernel
  (sigma in mm): CT noise is blotchy, not white, and its level varies with dose and habitus.
- ``psf_xy_mm``, ``psf_z_mm``: Gaussian point-spread sigma (mm) in-plane and along z (thick slices average
  more: partial volume blurs small lesions and vessels); the label map stays crisp.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

TUMOR_TYPES = ("hypo", "iso", "hyper")
_F = np.float32


# ----------------------------------------------------------------------------------------------------------
# parameters and result
# ----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhantomParams:
    """Every knob of the phantom (see the module docstring for what each one is for). No defaults here:
    the defaults live in the config schema, so there is one place to change them."""

    n_volumes: int
    seed: int
    matrix: int
    fov_mm: tuple[float, float]
    slice_thickness_mm: tuple[float, float]
    z_margin_mm: tuple[float, float]
    liver_height_mm: tuple[float, float]
    subcutaneous_fat_mm: tuple[float, float]
    liver_hu: tuple[float, float]
    liver_texture_sd: tuple[float, float]
    vessel_hu: tuple[float, float]
    tumor_free_fraction: float
    tumor_count: tuple[int, int]
    tumor_diameter_mm: tuple[float, float]
    tumor_type_mix: tuple[float, float, float]  # (hypo, iso, hyper)
    contrast_hypo: tuple[float, float]
    contrast_iso: tuple[float, float]
    contrast_hyper: tuple[float, float]
    rim_probability: float
    rim_contrast: tuple[float, float]
    necrosis_probability: float
    surface_tumor_probability: float
    noise_sd: tuple[float, float]
    noise_corr_mm: tuple[float, float]
    psf_xy_mm: tuple[float, float]
    psf_z_mm: tuple[float, float]

    def __post_init__(self) -> None:
        if self.n_volumes < 1:
            raise ValueError("n_volumes must be >= 1")
        if self.matrix < 16:
            raise ValueError("matrix must be >= 16")
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple) and len(v) == 2 and v[0] > v[1]:
                raise ValueError(f"{f.name}: range {v} has lo > hi")
        if len(self.tumor_type_mix) != 3 or min(self.tumor_type_mix) < 0 or sum(self.tumor_type_mix) <= 0:
            raise ValueError("tumor_type_mix needs three non-negative weights (hypo, iso, hyper), not all 0")
        if self.tumor_count[0] < 1:
            raise ValueError("tumor_count lower bound must be >= 1 (tumor-free cases come from tumor_free_fraction)")
        for name in ("tumor_free_fraction", "rim_probability", "necrosis_probability", "surface_tumor_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.tumor_diameter_mm[0] <= 0:
            raise ValueError("tumor_diameter_mm must be positive")

    @classmethod
    def from_config(cls, section: dict) -> "PhantomParams":
        """Build from ``config["data"]["phantom"]`` (already filled with schema defaults). Every field is
        required and unknown keys are rejected: a silently ignored typo would change the data set."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in section]
        if missing:
            raise KeyError(f"phantom config lacks {missing}")
        unknown = sorted(set(section) - set(names))
        if unknown:
            raise KeyError(f"unknown phantom config keys {unknown}")
        kw = {}
        for n in names:
            v = section[n]
            if n == "tumor_type_mix":
                if isinstance(v, dict):
                    extra = set(v) - set(TUMOR_TYPES)
                    if extra or any(t not in v for t in TUMOR_TYPES):
                        raise KeyError(f"tumor_type_mix needs exactly the keys {TUMOR_TYPES}, got {sorted(v)}")
                    v = tuple(float(v[t]) for t in TUMOR_TYPES)
                else:
                    v = tuple(float(x) for x in v)
            elif n == "tumor_count":
                v = tuple(int(x) for x in v)
            elif isinstance(v, (list, tuple)):
                v = tuple(float(x) for x in v)
            elif n in ("n_volumes", "seed", "matrix"):
                v = int(v)
            else:
                v = float(v)
            kw[n] = v
        return cls(**kw)


@dataclass(frozen=True)
class PhantomCase:
    hu: np.ndarray  # int16 (X, Y, Z) Hounsfield units
    segmentation: np.ndarray  # uint8 (X, Y, Z): 0 background, 1 liver, 2 tumor
    affine: np.ndarray  # 4x4 float64 voxel -> world (RAS mm)
    n_tumors: int


def tumor_free_cases(params: PhantomParams) -> set[int]:
    """Case ids without tumor: round(tumor_free_fraction * n_volumes) ids drawn from the seed (a generator
    separate from every case's own one)."""
    n = params.n_volumes
    k = int(round(params.tumor_free_fraction * n))
    rng = np.random.default_rng([params.seed, n, 0x7F3E])  # 3-word entropy: never equal to a case's [seed, id]
    return {int(i) for i in rng.choice(n, size=k, replace=False)}


# ----------------------------------------------------------------------------------------------------------
# geometry helpers (all coordinates in mm on the voxel grid: x along i, y along j, z along k)
# ----------------------------------------------------------------------------------------------------------
class _Grid:
    """The voxel grid: shape and spacing, and mm coordinate axes over all of it or over a box."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]):
        self.shape = shape
        self.spacing = np.asarray(spacing, dtype=float)

    def axes(self, sl: tuple[slice, slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable float32 mm coordinates (x, y, z) of the voxels in ``sl`` (default: the whole grid)."""
        sl = sl or tuple(slice(0, n) for n in self.shape)
        x = (np.arange(sl[0].start, sl[0].stop) * self.spacing[0]).astype(_F)[:, None, None]
        y = (np.arange(sl[1].start, sl[1].stop) * self.spacing[1]).astype(_F)[None, :, None]
        z = (np.arange(sl[2].start, sl[2].stop) * self.spacing[2]).astype(_F)[None, None, :]
        return x, y, z

    def box(self, lo, hi):
        """Voxel slices covering the mm box [lo, hi] (clipped), with its coordinate axes; None when empty."""
        lo = np.floor(np.asarray(lo, float) / self.spacing).astype(int)
        hi = np.ceil(np.asarray(hi, float) / self.spacing).astype(int) + 1
        lo = np.clip(lo, 0, self.shape)
        hi = np.clip(hi, 0, self.shape)
        if np.any(hi <= lo):
            return None
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        return sl, self.axes(sl)


def _rot(yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """World->local rotation: yaw about z (in-plane), pitch about y, roll about x."""
    cz, sz = math.cos(yaw), math.sin(yaw)
    cy, sy = math.cos(pitch), math.sin(pitch)
    cx, sx = math.cos(roll), math.sin(roll)
    rz = np.array([[cz, sz, 0], [-sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, sx], [0, -sx, cx]])
    return rx @ ry @ rz


def _local(xyz, centre, rotation: np.ndarray | None = None) -> list[np.ndarray]:
    """Coordinates relative to ``centre``, optionally rotated into a body's own frame."""
    d = [xyz[0] - _F(centre[0]), xyz[1] - _F(centre[1]), xyz[2] - _F(centre[2])]
    if rotation is None:
        return d
    r = rotation
    return [_F(r[i, 0]) * d[0] + _F(r[i, 1]) * d[1] + _F(r[i, 2]) * d[2] for i in range(3)]


def _quadric(xyz, centre, semi_axes, rotation: np.ndarray | None = None) -> np.ndarray:
    """Normalised ellipsoid radius: < 1 inside the ellipsoid with semi-axes ``semi_axes``."""
    q = _local(xyz, centre, rotation)
    s = (q[0] / _F(semi_axes[0])) ** 2 + (q[1] / _F(semi_axes[1])) ** 2 + (q[2] / _F(semi_axes[2])) ** 2
    return np.sqrt(s)


def _smin(a, b, k: float = 0.15):
    """Smooth minimum: unions of implicit shapes with a fillet instead of a crease."""
    h = np.clip(k - np.abs(a - b), 0, None) / _F(k)
    return np.minimum(a, b) - h * h * _F(k / 4)


def _smooth_noise(rng: np.random.Generator, shape, spacing, sigma_mm: float) -> np.ndarray:
    """Zero-mean, unit-sd Gaussian random field with correlation ``sigma_mm``, built on a coarse grid and
    linearly upsampled (cheap even for large correlation lengths)."""
    spacing = np.asarray(spacing, float)
    factor = np.maximum(1, np.floor(sigma_mm / (1.5 * spacing))).astype(int)
    coarse_shape = tuple(int(math.ceil(n / f)) + 2 for n, f in zip(shape, factor))
    coarse = rng.standard_normal(coarse_shape, dtype=_F)
    coarse = ndi.gaussian_filter(coarse, sigma_mm / (spacing * factor), mode="wrap")
    if np.any(factor > 1):
        coarse = ndi.zoom(coarse, factor, order=1, grid_mode=False)
    out = coarse[: shape[0], : shape[1], : shape[2]]
    sd = float(out.std()) or 1.0
    return ((out - out.mean()) / sd).astype(_F)


def _segment_param(x, y, z, p0: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Position along the segment p0 -> p0 + d of each voxel's closest point, clipped to [0, 1]."""
    dot = (x - _F(p0[0])) * _F(d[0]) + (y - _F(p0[1])) * _F(d[1]) + (z - _F(p0[2])) * _F(d[2])
    return np.clip(dot / _F(float(d @ d) or 1e-6), 0, 1)


def _segments(grid: _Grid, segs, target: np.ndarray, where: np.ndarray) -> None:
    """Rasterise tapered tubes ``(p0, p1, r0, r1)`` (mm) into the bool mask ``target``, only where ``where``."""
    for p0, p1, r0, r1 in segs:
        p0 = np.asarray(p0, float)
        p1 = np.asarray(p1, float)
        r = max(r0, r1)
        b = grid.box(np.minimum(p0, p1) - r, np.maximum(p0, p1) + r)
        if b is None:
            continue
        sl, (x, y, z) = b
        d = p1 - p0
        t = _segment_param(x, y, z, p0, d)
        dist2 = (x - _F(p0[0]) - t * _F(d[0])) ** 2 + (y - _F(p0[1]) - t * _F(d[1])) ** 2
        dist2 += (z - _F(p0[2]) - t * _F(d[2])) ** 2
        rad = _F(r0) + t * _F(r1 - r0)
        target[sl] |= (dist2 < rad * rad) & where[sl]


def _unit(v) -> np.ndarray:
    """``v`` scaled to length 1 (a zero vector stays zero)."""
    v = np.asarray(v, float)
    return v / (np.linalg.norm(v) or 1.0)


def _tree(rng: np.random.Generator, p, d, length: float, radius: float, depth: int, out: list,
          min_r: float = 0.9) -> None:
    """A random branching vessel tree: bifurcations with 20-50 degree angles, shrinking length and radius."""
    d = _unit(d)
    p1 = p + d * length
    r1 = radius * 0.85
    out.append((p, p1, radius, r1))
    if depth == 0 or r1 * 0.8 < min_r:
        return
    n_child = 3 if rng.random() < 0.2 else 2
    perp = _unit(np.cross(d, rng.standard_normal(3)))
    for c in range(n_child):
        ang = math.radians(rng.uniform(20, 50))
        axis_turn = 2 * math.pi * c / n_child + rng.uniform(-0.4, 0.4)
        # rotate perp about d to get a spread of branching planes
        w = perp * math.cos(axis_turn) + np.cross(d, perp) * math.sin(axis_turn)
        nd = d * math.cos(ang) + w * math.sin(ang)
        _tree(rng, p1, nd, length * rng.uniform(0.6, 0.85), r1 * rng.uniform(0.65, 0.8), depth - 1, out, min_r)


def _u(rng: np.random.Generator, lo_hi) -> float:
    """One uniform draw from a ``(lo, hi)`` knob range."""
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


# ----------------------------------------------------------------------------------------------------------
# per-case state shared by the painting steps
# ----------------------------------------------------------------------------------------------------------
# Every step draws from the case's one generator, so the steps must run in the order generate_case calls
# them (and each step must keep its own draw order): reordering anything changes every later voxel.
# Body frame: u = patient-left offset, v = posterior offset from the body centre, z = mm from the first slice.
@dataclass(frozen=True)
class _Patient:
    """Scan geometry and body habitus of one case (everything drawn before anything is painted)."""

    grid: _Grid
    fov: float
    spacing_xy: float
    slice_mm: float
    liver_bottom: float  # z of the liver's lower tip
    liver_height: float
    centre_x: float  # body centre (mm on the grid)
    centre_y: float
    semi_lat: float  # body outline semi-axes: lateral, anterior, posterior
    semi_ant: float
    semi_post: float
    fat_lat: float  # subcutaneous fat thickness: lateral, anterior, posterior
    fat_ant: float
    fat_post: float
    muscle_lat: float  # abdominal wall muscle thickness: lateral, anterior, posterior
    muscle_ant: float
    muscle_post: float
    outline_scale: np.ndarray  # (1, 1, nz) slow z-variation of the outline
    outline_exp: np.float32  # exponent of the flattened posterior half of the outline
    u: np.ndarray  # (nx, 1, 1) body-frame coordinate axes
    v: np.ndarray  # (1, ny, 1)
    z: np.ndarray  # (1, 1, nz)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.grid.shape

    @property
    def liver_top(self) -> float:
        return self.liver_bottom + self.liver_height

    @property
    def half(self) -> float:
        """Distance (mm) from the first voxel to the grid centre in-plane."""
        return (self.shape[0] - 1) / 2 * self.spacing_xy

    @property
    def size(self) -> float:
        """Anatomy scale factor: organs and bones scale with the patient."""
        return self.semi_lat / 160

    @property
    def cavity(self) -> tuple[float, float, float]:
        """Semi-axes (lateral, anterior, posterior) of the abdominal cavity inside the wall muscles."""
        return (self.semi_lat - self.fat_lat - self.muscle_lat, self.semi_ant - self.fat_ant - self.muscle_ant,
                self.semi_post - self.fat_post - self.muscle_post)

    @property
    def right_lobe(self) -> tuple[float, float]:
        """(u, v) centre of the liver's right lobe."""
        lat, ant, _ = self.cavity
        return -0.5 * lat, -0.1 * ant

    @property
    def theta(self) -> np.ndarray:
        """In-plane angle around the body centre: 0 anterior, +-pi posterior; (nx, ny, 1)."""
        return np.arctan2(self.u, -self.v)

    def to_grid(self, u: float, v: float, z: float) -> np.ndarray:
        """Body-frame point -> mm on the grid."""
        return np.array([u + self.centre_x, v + self.centre_y, z], float)

    def outline(self, lat: float, ant: float, post: float) -> np.ndarray:
        """Normalised radius (< 1 inside) of a body-shaped outline with these semi-axes: elliptic in front,
        flatter at the back, following the outline's z-variation."""
        lat = _F(lat) * self.outline_scale
        v = self.v
        ev = np.where(v < 0, (np.abs(v) / (_F(ant) * self.outline_scale)) ** 2,
                      (np.abs(v) / (_F(post) * self.outline_scale)) ** self.outline_exp)
        return (self.u / lat) ** 2 + ev


@dataclass
class _Canvas:
    """The HU volume being painted, and the cavity voxels not yet given to an organ (organs painted later
    only take what is still free, so the painting order decides who wins an overlap)."""

    hu: np.ndarray
    free: np.ndarray

    def paint(self, mask: np.ndarray, sl, values) -> None:
        """Set ``mask`` (within the box ``sl``) to ``values`` (scalar or array over the box) and claim it."""
        self.hu[sl][mask] = values if np.isscalar(values) else values[mask]
        self.free[sl] &= ~mask


@dataclass(frozen=True)
class _Body:
    body: np.ndarray  # inside the skin
    muscle_out: np.ndarray  # inside the outer surface of the wall muscles
    cavity: np.ndarray  # inside the wall muscles


@dataclass(frozen=True)
class _Spine:
    u: float  # vertebral body centre (body frame)
    v: float
    radius: float  # vertebral body (ap semi-axis)
    canal_v: float  # spinal canal centre (v)
    canal_r: float
    period: float  # vertebral level height (mm along z)
    phase: float


@dataclass(frozen=True)
class _GreatVessels:
    hu: float  # enhanced vessel HU of the case
    aorta_uv: tuple[float, float]
    aorta_r: float
    ivc_uv: tuple[float, float]


@dataclass(frozen=True)
class _Liver:
    mask: np.ndarray  # full-grid bool
    box: tuple[slice, slice, slice]  # bounding box the liver was built in
    right_lat: float  # right-lobe semi-axes (lateral, ap): where the hilum sits
    right_ap: float
    base_hu: float  # mean parenchyma HU


# ----------------------------------------------------------------------------------------------------------
# the case generator
# ----------------------------------------------------------------------------------------------------------
def generate_case(case_id: int, params: PhantomParams) -> PhantomCase:
    """One CT volume with its LiTS-style label map; deterministic in (params, case_id)."""
    if not 0 <= case_id < params.n_volumes:
        raise ValueError(f"case_id {case_id} outside 0..{params.n_volumes - 1}")
    has_tumor = case_id not in tumor_free_cases(params)
    rng = np.random.default_rng([params.seed, case_id])

    # geometry, table, body wall
    patient = _draw_patient(rng, params)
    shape, spacing = patient.shape, patient.grid.spacing
    hu = np.full(shape, -1000.0, dtype=_F)
    _paint_table(rng, patient, hu)
    fat_tex = _smooth_noise(rng, shape, spacing, 3.0)
    body = _paint_body_wall(patient, hu, fat_tex)
    canvas = _Canvas(hu=hu, free=body.cavity.copy())

    # skeleton and great vessels (hard structures, painted first)
    spine = _draw_spine(rng, patient)
    _paint_back_muscles(rng, patient, spine, body, canvas, fat_tex)
    bone_tex = _smooth_noise(rng, shape, spacing, 2.0)
    _paint_spine(rng, patient, spine, canvas, bone_tex)
    vessels = _paint_great_vessels(rng, params, patient, spine, body, canvas)

    # thorax and organs around the liver
    dome = _paint_thorax(rng, patient, canvas, vessels.hu)
    _paint_kidneys(rng, patient, spine, canvas, vessels.hu)  # before the liver: it carries the renal impression
    _paint_gallbladder(rng, patient, canvas)
    liver = _paint_liver(rng, params, patient, spine, vessels, dome, canvas)
    _paint_liver_vessels(rng, patient, spine, vessels, liver, canvas)
    _paint_spleen(rng, patient, canvas, dome, liver.base_hu, fat_tex)
    _paint_stomach(rng, patient, canvas, dome, fat_tex)
    _paint_pancreas(rng, patient, spine, canvas, fat_tex)
    _paint_bowel(rng, patient, canvas)

    # labels and tumors
    seg = np.zeros(shape, np.uint8)
    seg[liver.mask] = 1
    n_tumors = _place_tumors(rng, params, patient, canvas, liver, seg) if has_tumor else 0

    _paint_ribs(rng, patient, hu, body, bone_tex)  # after the organs, inside the wall
    return PhantomCase(hu=_form_image(rng, params, patient, hu), segmentation=seg, affine=_affine(patient),
                       n_tumors=n_tumors)


# ----------------------------------------------------------------------------------------------------------
# geometry, table, body wall
# ----------------------------------------------------------------------------------------------------------
def _draw_patient(rng: np.random.Generator, params: PhantomParams) -> _Patient:
    """Grid (FOV, spacing, slices covering the liver plus margins) and body habitus."""
    matrix = params.matrix
    fov = _u(rng, params.fov_mm)
    spacing_xy = fov / matrix
    slice_mm = _u(rng, params.slice_thickness_mm)
    liver_height = _u(rng, params.liver_height_mm)
    margin_below, margin_above = _u(rng, params.z_margin_mm), _u(rng, params.z_margin_mm)
    nz = int(math.ceil((margin_below + liver_height + margin_above) / slice_mm)) + 1
    grid = _Grid((matrix, matrix, nz), (spacing_xy, spacing_xy, slice_mm))
    x, y, z = grid.axes()
    liver_bottom, liver_top = margin_below, margin_below + liver_height

    half = (matrix - 1) / 2 * spacing_xy
    semi_lat = fov * rng.uniform(0.36, 0.44)
    centre_x = half + rng.uniform(-0.02, 0.02) * fov
    semi_ant = semi_lat * rng.uniform(0.62, 0.74)
    semi_post = semi_ant * rng.uniform(0.85, 0.95)
    centre_y = half + rng.uniform(-0.03, 0.0) * fov - (semi_post - semi_ant) / 2

    # body outline varying slowly along z (upper abdomen flares toward the rib cage)
    z_mid = (liver_bottom + liver_top) / 2
    flare = rng.uniform(-0.08, 0.04)
    wobble = _F(0.015) * np.sin(z / _F(60) + _F(rng.uniform(0, 6)))
    outline_scale = (1 + flare * (z - _F(z_mid)) / _F(200) + wobble).astype(_F)
    fat = _u(rng, params.subcutaneous_fat_mm)
    fat_lat, fat_ant, fat_post = fat * rng.uniform(0.7, 1.1), fat * rng.uniform(0.9, 1.3), fat * rng.uniform(0.5, 0.8)
    muscle_lat, muscle_ant, muscle_post = rng.uniform(8, 13), rng.uniform(7, 11), rng.uniform(6, 9)
    outline_exp = _F(rng.uniform(2.3, 2.8))
    return _Patient(grid=grid, fov=fov, spacing_xy=spacing_xy, slice_mm=slice_mm, liver_bottom=liver_bottom,
                    liver_height=liver_height, centre_x=centre_x, centre_y=centre_y, semi_lat=semi_lat,
                    semi_ant=semi_ant, semi_post=semi_post, fat_lat=fat_lat, fat_ant=fat_ant, fat_post=fat_post,
                    muscle_lat=muscle_lat, muscle_ant=muscle_ant, muscle_post=muscle_post,
                    outline_scale=outline_scale, outline_exp=outline_exp,
                    u=x - _F(centre_x), v=y - _F(centre_y), z=z)


def _paint_table(rng: np.random.Generator, patient: _Patient, hu: np.ndarray) -> None:
    """CT table under the patient (posterior): a curved carbon slab with a foam core."""
    p = patient
    cx, fov = p.centre_x, p.fov
    table_y = p.centre_y + p.semi_post * float(p.outline_scale.max()) + rng.uniform(3, 12)
    b = p.grid.box((cx - 0.45 * fov, table_y - 30, 0), (cx + 0.45 * fov, table_y + 25, p.shape[2] * p.slice_mm))
    if b is None:
        return
    sl, (x, y, _z) = b
    dy = y - _F(table_y) + _F(25) * (1 - np.cos((x - _F(cx)) / _F(0.45 * fov))) * 1.5
    slab = (dy > 0) & (dy < 14)
    val = np.where((dy < 2.5) | (dy > 11.5), _F(250), _F(-850))
    hu[sl] = np.where(np.broadcast_to(slab, hu[sl].shape), val, _F(-1000))


def _paint_body_wall(patient: _Patient, hu: np.ndarray, fat_tex: np.ndarray) -> _Body:
    """Skin, subcutaneous fat, wall muscles and visceral fat (no draws)."""
    p = patient
    body = p.outline(p.semi_lat, p.semi_ant, p.semi_post) < 1
    skin_in = p.outline(p.semi_lat - 2, p.semi_ant - 2, p.semi_post - 2) < 1
    muscle_r = p.outline(p.semi_lat - p.fat_lat, p.semi_ant - p.fat_ant, p.semi_post - p.fat_post)
    muscle_out = muscle_r < 1
    # wall thickness by angle: rectus bellies either side of a thin linea alba, thick obliques laterally
    ath = np.abs(p.theta)
    wall = (_F(p.muscle_ant) * (0.25 + 1.1 * np.exp(-((ath - 0.22) / 0.16) ** 2))
            + _F(p.muscle_lat) * 1.3 * np.exp(-((ath - 1.5) / 0.5) ** 2) + _F(p.muscle_post) * (ath > 0.5))
    r_typ = _F((p.semi_lat + p.semi_ant) / 2)
    cavity = np.sqrt(muscle_r) < 1 - wall / r_typ

    hu[body] = (-105 + 10 * fat_tex)[body]
    hu[body & ~skin_in] = 25
    ring = muscle_out & ~cavity
    hu[ring] = (48 + 6 * fat_tex)[ring]
    # visceral fat: a little mesenteric stranding
    hu[cavity] = (-95 + 18 * fat_tex)[cavity]
    return _Body(body=body, muscle_out=muscle_out, cavity=cavity)


# ----------------------------------------------------------------------------------------------------------
# skeleton, back muscles, great vessels
# ----------------------------------------------------------------------------------------------------------
def _draw_spine(rng: np.random.Generator, patient: _Patient) -> _Spine:
    """Vertebral column position and level spacing (posterior midline, scaled with the patient)."""
    ks = patient.size
    radius = rng.uniform(15, 19) * ks
    v = patient.cavity[2] - rng.uniform(58, 66) * ks
    u = rng.uniform(-4, 4)
    period = rng.uniform(30, 36)
    phase = rng.uniform(0, period)
    return _Spine(u=u, v=v, radius=radius, canal_v=v + radius + 10 * ks, canal_r=8.0 * ks, period=period,
                  phase=phase)


def _paint_back_muscles(rng: np.random.Generator, patient: _Patient, spine: _Spine, body: _Body,
                        canvas: _Canvas, fat_tex: np.ndarray) -> None:
    """Paraspinal muscles beside the spine, and psoas growing toward the pelvis below the liver's lower half."""
    p, ks = patient, patient.size
    U, V, Z = p.u, p.v, p.z
    paraspinal = np.zeros((p.shape[0], p.shape[1], 1), bool)
    for side in (-1, 1):
        pu, pv = spine.u + side * rng.uniform(28, 34) * ks, spine.canal_v + rng.uniform(14, 20) * ks
        paraspinal |= (((U - _F(pu)) / _F(rng.uniform(24, 30) * ks)) ** 2
                       + ((V - _F(pv)) / _F(rng.uniform(22, 28) * ks)) ** 2 < 1)
    paraspinal = np.broadcast_to(paraspinal, p.shape) & body.body
    canvas.hu[paraspinal] = (52 + 6 * fat_tex)[paraspinal]
    psoas = np.zeros(p.shape, bool)
    for side in (-1, 1):
        pr = np.clip((p.liver_bottom + 0.35 * p.liver_height - Z) / _F(60), 0, 1) * _F(rng.uniform(14, 20))
        pu = spine.u + side * (spine.radius * 1.15 + 10)
        psoas |= ((U - _F(pu)) ** 2 + (V - _F(spine.v + 3)) ** 2) < (pr * pr)
    psoas &= canvas.free
    canvas.hu[psoas] = (50 + 6 * fat_tex)[psoas]
    canvas.free &= ~(paraspinal | psoas)


def _paint_spine(rng: np.random.Generator, patient: _Patient, spine: _Spine, canvas: _Canvas,
                 bone_tex: np.ndarray) -> None:
    """Vertebral bodies with discs, posterior arch, spinous and transverse processes, spinal canal."""
    p = patient
    U, V, Z = p.u, p.v, p.z
    du = U - _F(spine.u)
    vb = (du / _F(spine.radius * 1.15)) ** 2 + ((V - _F(spine.v)) / _F(spine.radius)) ** 2  # (nx, ny, 1)
    level = (Z - _F(spine.phase)) % _F(spine.period)  # (1, 1, nz)
    disc = level < _F(7.5)
    c_can, rc = spine.canal_v, spine.canal_r
    can = du ** 2 + (V - _F(c_can)) ** 2
    arch = (can < _F((rc + 6) ** 2)) & (V > _F(c_can - 3))
    spinous = (np.abs(du) < 4) & (V > _F(c_can)) & (V < _F(c_can + rc + 28))
    seg_pos = level / _F(spine.period)
    transverse = ((np.abs(V - _F(c_can - 2) - _F(0.35) * np.abs(du)) < 3.5) & (np.abs(du) < _F(rc + 24))
                  & (seg_pos > 0.35) & (seg_pos < 0.55))

    cortical = rng.uniform(650, 900)
    cancellous = rng.uniform(180, 280)
    hu = canvas.hu
    vbody = np.broadcast_to(vb < 1, p.shape)
    vhu = np.where(vb < 0.72, _F(cancellous), _F(cortical))
    vhu = np.where(disc, _F(85), vhu)
    hu[vbody] = (np.broadcast_to(vhu, p.shape) + 25 * bone_tex)[vbody]
    post = np.broadcast_to((arch | spinous), p.shape) | transverse
    hu[post] = (0.8 * cortical + 40 * bone_tex)[post]
    canal = np.broadcast_to(can < rc * rc, p.shape)
    hu[canal] = 25
    canvas.free &= ~(vbody | post | canal)


def _paint_great_vessels(rng: np.random.Generator, params: PhantomParams, patient: _Patient, spine: _Spine,
                         body: _Body, canvas: _Canvas) -> _GreatVessels:
    """Aorta left-anterior of the spine, IVC to its right (less enhanced in portal phase)."""
    U, V, shape = patient.u, patient.v, patient.shape
    vessel_hu = _u(rng, params.vessel_hu)
    r_ao = rng.uniform(10, 13)
    ao_c = (spine.u + rng.uniform(14, 24), spine.v - spine.radius - r_ao - rng.uniform(1, 4))
    aorta = np.broadcast_to(((U - _F(ao_c[0])) ** 2 + (V - _F(ao_c[1])) ** 2) < r_ao**2, shape) & body.body
    canvas.hu[aorta] = vessel_hu + 8
    r_ivc = (rng.uniform(10, 14), rng.uniform(8, 11))
    ivc_c = (spine.u - rng.uniform(22, 32), spine.v - spine.radius - r_ivc[1] - rng.uniform(4, 10))
    ivc_r = ((U - _F(ivc_c[0])) / _F(r_ivc[0])) ** 2 + ((V - _F(ivc_c[1])) / _F(r_ivc[1])) ** 2
    ivc = np.broadcast_to(ivc_r < 1, shape) & body.body
    canvas.hu[ivc] = vessel_hu - rng.uniform(10, 35)
    canvas.free &= ~(aorta | ivc)
    return _GreatVessels(hu=vessel_hu, aorta_uv=ao_c, aorta_r=r_ao, ivc_uv=ivc_c)


# ----------------------------------------------------------------------------------------------------------
# thorax and organs
# ----------------------------------------------------------------------------------------------------------
def _paint_thorax(rng: np.random.Generator, patient: _Patient, canvas: _Canvas, vessel_hu: float) -> np.ndarray:
    """Diaphragm domes (right higher), heart and lung bases above them; returns the diaphragm height
    (nx, ny, 1), the ceiling for the upper abdominal organs."""
    p = patient
    U, V, Z = p.u, p.v, p.z
    lat, ant, _ = p.cavity
    top = p.liver_top
    right_u, right_v = p.right_lobe
    dome_radius = rng.uniform(90, 140)
    dome_r = top + 3 - ((U - _F(right_u)) ** 2 + (V - _F(right_v - 0.2 * ant)) ** 2) / _F(2 * dome_radius)
    dome_l = ((top + 3 - rng.uniform(8, 20))
              - ((U - _F(0.45 * lat)) ** 2 + (V - _F(-0.1 * ant)) ** 2) / _F(2 * dome_radius))
    dome = np.maximum(dome_r, dome_l)
    above = Z > dome
    diaphragm = (Z > dome - 4) & ~above & canvas.free
    canvas.hu[diaphragm] = 45
    heart_c = p.to_grid(0.15 * lat, -0.35 * ant, float(top) + rng.uniform(20, 35))
    heart_ax = (rng.uniform(0.4, 0.5) * lat, 0.5 * ant, 55)
    b = p.grid.box(heart_c - heart_ax, heart_c + heart_ax)
    thorax = canvas.free & above
    if b is not None:
        sl, xyz = b
        f = _quadric(xyz, heart_c, heart_ax, _rot(yaw=0.5))
        m = (f < 1) & thorax[sl]
        canvas.hu[sl][m] = np.where(f < 0.75, _F(vessel_hu - 10), _F(105))[m]  # blood pool inside myocardium
        thorax[sl] &= ~m
        canvas.free[sl] &= ~m
    lung_tex = _smooth_noise(rng, p.shape, p.grid.spacing, 4.0)
    canvas.hu[thorax] = (-860 + 25 * lung_tex)[thorax]
    canvas.free &= ~above  # the rest of the cavity is the abdomen
    canvas.free &= ~diaphragm
    return dome


def _paint_kidneys(rng: np.random.Generator, patient: _Patient, spine: _Spine, canvas: _Canvas,
                   vessel_hu: float) -> None:
    """Both kidneys (the right one lower), cortex brighter than medulla, with renal sinus fat."""
    p, ks = patient, patient.size
    kid_ax = (rng.uniform(22, 28) * ks, rng.uniform(20, 25) * ks, rng.uniform(45, 58))
    cortex_hu = vessel_hu - rng.uniform(0, 30)
    medulla_hu = cortex_hu - rng.uniform(20, 50)
    for side in (-1, 1):
        c = p.to_grid(spine.u + side * rng.uniform(62, 76) * ks, spine.v + rng.uniform(2, 14),
                      p.liver_bottom + (rng.uniform(-5, 20) if side < 0 else rng.uniform(10, 35)))
        rot = _rot(yaw=side * rng.uniform(0.35, 0.7), roll=rng.uniform(-0.15, 0.15),
                   pitch=side * rng.uniform(0.05, 0.2))
        b = p.grid.box(c - max(kid_ax), c + max(kid_ax))
        if b is None:
            continue
        sl, xyz = b
        f = _quadric(xyz, c, kid_ax, rot)
        q = _local(xyz, c, rot)
        # renal sinus fat: an inner ellipsoid shifted off-centre toward the hilum
        sinus = (q[0] ** 2 / _F((kid_ax[0] * 0.45) ** 2) + ((q[1] + _F(-0.5 * kid_ax[1])) / _F(kid_ax[1] * 0.5)) ** 2
                 + (q[2] / _F(kid_ax[2] * 0.55)) ** 2) < 1
        m = (f < 1) & canvas.free[sl]
        val = np.where(f < 0.72, _F(medulla_hu), _F(cortex_hu))
        val = np.where(sinus & (f < 0.95), _F(-70), val)
        canvas.paint(m, sl, val)


def _paint_gallbladder(rng: np.random.Generator, patient: _Patient, canvas: _Canvas) -> None:
    """Gallbladder in 75% of cases, carved out of the liver's inferior surface (painted before the liver)."""
    if rng.random() >= 0.75:
        return
    p = patient
    lat, ant, _ = p.cavity
    right_u, _ = p.right_lobe
    gb_c = p.to_grid(right_u + 0.45 * 0.52 * lat, -0.55 * ant,
                     p.liver_bottom + 0.2 * p.liver_height + rng.uniform(0, 15))
    gb_ax = (rng.uniform(12, 18), rng.uniform(12, 18), rng.uniform(28, 40))
    b = p.grid.box(gb_c - max(gb_ax), gb_c + max(gb_ax))
    if b is None:
        return
    sl, xyz = b
    f = _quadric(xyz, gb_c, gb_ax, _rot(pitch=rng.uniform(-0.5, 0.5), roll=rng.uniform(0.3, 0.7)))
    m = (f < 1) & canvas.free[sl]
    canvas.paint(m, sl, np.where(f < 0.85, _F(rng.uniform(0, 20)), _F(60)))  # bile inside an enhancing wall


def _liver_box(patient: _Patient) -> tuple[np.ndarray, np.ndarray]:
    """mm corners of the box the liver is built in."""
    p = patient
    lat, ant, post = p.cavity
    lo = p.to_grid(-lat * 1.05, -ant * 1.02, p.liver_bottom - 0.2 * p.liver_height)
    hi = p.to_grid(0.75 * lat, post, p.liver_top + 5)
    return lo, hi


def _liver_field(rng: np.random.Generator, patient: _Patient, xyz) -> tuple[np.ndarray, float, float]:
    """Implicit liver shape (< 1 inside): a right lobe narrowing to an inferior tip, a tapered left lobe and
    the caudate lobe, smoothly united and displaced by low-frequency noise. Returns it with the right lobe's
    (lateral, ap) semi-axes."""
    p = patient
    lat, ant, post = p.cavity
    height, bottom = p.liver_height, p.liver_bottom
    cx, cy = p.centre_x, p.centre_y
    right_u, right_v = p.right_lobe
    lx, ly, lz = xyz

    # right lobe: a superellipsoid that shrinks and drifts (tip_u, tip_v) toward its inferior tip
    ar, br, cr = rng.uniform(0.58, 0.66) * lat, rng.uniform(0.85, 0.98) * (ant + post) / 2, height / 2
    zr = bottom + height / 2
    t = np.clip((_F(zr) - lz) / _F(cr), 0, 1)  # 0 above the centre, 1 at the bottom
    tip_u, tip_v = rng.uniform(0.0, 0.25), rng.uniform(0.05, 0.3)
    shrink = 1 - _F(rng.uniform(0.15, 0.35)) * t
    cu_r = _F(cx + right_u) - _F(tip_u * ar) * t
    cv_r = _F(cy + right_v + 0.1 * post) + _F(tip_v * br) * t
    pr = _F(rng.uniform(2.2, 2.9))
    f_right = ((np.abs(lx - cu_r) / (_F(ar) * shrink)) ** pr + (np.abs(ly - cv_r) / (_F(br) * shrink)) ** pr
               + np.abs((lz - _F(zr)) / _F(cr)) ** pr) ** (1 / pr)
    # left lobe: an ellipsoid thinning toward the patient's left
    ul, vl, zl = 0.12 * lat + rng.uniform(-0.1, 0.1) * lat, -0.45 * ant, bottom + rng.uniform(0.6, 0.75) * height
    al, bl, cl = rng.uniform(0.45, 0.6) * lat, rng.uniform(0.38, 0.5) * ant, rng.uniform(0.25, 0.35) * height
    taper = 1 - _F(0.55) * np.clip((lx - _F(cx + ul)) / _F(al), 0, 1)
    f_left = np.sqrt(((lx - _F(cx + ul)) / _F(al)) ** 2 + ((ly - _F(cy + vl)) / (_F(bl) * taper)) ** 2
                     + ((lz - _F(zl)) / (_F(cl) * taper)) ** 2)
    f_caudate = _quadric(xyz, p.to_grid(-0.08 * lat, 0.15 * post, bottom + 0.6 * height),
                         (0.16 * lat, 0.22 * post, 0.2 * height))
    f = _smin(_smin(f_right, f_left, 0.25), f_caudate, 0.2)
    f += _F(rng.uniform(0.06, 0.11)) * _smooth_noise(rng, f.shape, p.grid.spacing, rng.uniform(18, 28))
    return f, ar, br


def _keep_large_pieces(mask: np.ndarray) -> np.ndarray:
    """Drop connected pieces under 10% of the largest (the displacement can leave crumbs)."""
    lab, nlab = ndi.label(mask)
    if nlab <= 1:
        return mask
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return np.isin(lab, np.flatnonzero(sizes >= 0.1 * sizes.max()))


def _paint_liver(rng: np.random.Generator, params: PhantomParams, patient: _Patient, spine: _Spine,
                 vessels: _GreatVessels, dome: np.ndarray, canvas: _Canvas) -> _Liver:
    """The liver under the right dome, kept out of the prevertebral space, with textured parenchyma."""
    p = patient
    sl, xyz = p.grid.box(*_liver_box(p))
    lx, ly, lz = xyz
    f, right_lat, right_ap = _liver_field(rng, p, xyz)
    # keep the liver out of the prevertebral space (crura, aorta, IVC sit between it and the spine)
    lu, lv = lx - _F(p.centre_x), ly - _F(p.centre_y)
    u_s, v_s, rv = spine.u, spine.v, spine.radius
    ao_c, r_ao = vessels.aorta_uv, vessels.aorta_r
    prevert = (lu > _F(u_s - rv * 0.8)) & (lu < _F(u_s + rv * 1.2 + 12)) & (lv > _F(v_s - rv - 6))
    prevert |= (lu - _F(ao_c[0])) ** 2 + (lv - _F(ao_c[1])) ** 2 < _F((r_ao + 7) ** 2)
    liver_sl = (f < 1) & canvas.free[sl] & ~prevert & (lz < dome[sl[0], sl[1]] - _F(4))
    liver_sl = _keep_large_pieces(liver_sl)
    mask = np.zeros(p.shape, bool)
    mask[sl] = liver_sl

    base_hu = _u(rng, params.liver_hu)
    tex_sd = _u(rng, params.liver_texture_sd)
    tex = (0.85 * _smooth_noise(rng, f.shape, p.grid.spacing, rng.uniform(3, 5))
           + 0.5 * _smooth_noise(rng, f.shape, p.grid.spacing, 15.0))
    parenchyma = _F(base_hu) + _F(tex_sd) * tex / _F(0.985)  # 0.985: sd of the summed fields
    canvas.hu[sl][liver_sl] = parenchyma[liver_sl]
    canvas.free[sl] &= ~liver_sl
    return _Liver(mask=mask, box=sl, right_lat=right_lat, right_ap=right_ap, base_hu=base_hu)


def _paint_liver_vessels(rng: np.random.Generator, patient: _Patient, spine: _Spine, vessels: _GreatVessels,
                         liver: _Liver, canvas: _Canvas) -> None:
    """Portal trees from the hilum and hepatic veins from the IVC (clipped to the liver), and the
    extrahepatic portal / splenic vein confluence."""
    p = patient
    lat, ant, _ = p.cavity
    bottom, height = p.liver_bottom, p.liver_height
    right_u, right_v = p.right_lobe
    ivc_c = vessels.ivc_uv
    vsegs = []
    hil = p.to_grid(right_u + 0.3 * liver.right_lat, right_v + rng.uniform(-0.1, 0.15) * liver.right_ap,
                    bottom + rng.uniform(0.35, 0.5) * height)
    conf = p.to_grid(spine.u + rng.uniform(-5, 10), ivc_c[1] - 25, hil[2] - rng.uniform(25, 45))
    trunk = [(conf, hil, 7.0, 6.5)]
    _tree(rng, hil, p.to_grid(-lat, rng.uniform(-0.2, 0.4) * ant, hil[2] + 20) - hil,
          rng.uniform(30, 40), 5.5, 4, vsegs)
    _tree(rng, hil, np.array([1.0, -1.2, 0.4]), rng.uniform(30, 40), 4.5, 4, vsegs)
    _tree(rng, hil, np.array([-0.4, -0.2, -1.0]), rng.uniform(25, 35), 4.0, 3, vsegs)
    hv0 = p.to_grid(ivc_c[0], ivc_c[1], p.liver_top - rng.uniform(12, 22))
    for dvec in ([-1.0, -0.3, -0.5], [-0.2, -1.0, -0.4], [0.8, -1.0, -0.3]):
        _tree(rng, hv0, np.array(dvec) + rng.normal(0, 0.2, 3), rng.uniform(35, 45), 4.5, 3, vsegs)
    vmask = np.zeros(p.shape, bool)
    _segments(p.grid, vsegs, vmask, where=liver.mask)
    canvas.hu[vmask] = vessels.hu - 5
    pv = np.zeros(p.shape, bool)
    splenic = (conf, p.to_grid(0.55 * lat, ant * 0.05, conf[2] + 15), 5.0, 4.0)
    _segments(p.grid, trunk + [splenic], pv, where=canvas.free)
    canvas.hu[pv] = vessels.hu - 10
    canvas.free &= ~pv


def _paint_spleen(rng: np.random.Generator, patient: _Patient, canvas: _Canvas, dome: np.ndarray,
                  liver_hu: float, fat_tex: np.ndarray) -> None:
    """Spleen: a rotated ellipsoid with a concave (hilar) face, a little brighter than the liver."""
    p = patient
    lat, _, post = p.cavity
    sp_c = p.to_grid(0.72 * lat, 0.45 * post, p.liver_bottom + rng.uniform(0.55, 0.75) * p.liver_height)
    sp_ax = (rng.uniform(22, 30), rng.uniform(50, 65), rng.uniform(45, 60))
    b = p.grid.box(sp_c - max(sp_ax), sp_c + max(sp_ax))
    if b is None:
        return
    sl, xyz = b
    rot = _rot(yaw=rng.uniform(-1.0, -0.6))
    f = _quadric(xyz, sp_c, sp_ax, rot)
    hollow = _quadric(xyz, sp_c - rot[0] * sp_ax[0] * 1.6, (sp_ax[0] * 1.4, sp_ax[1] * 0.9, sp_ax[2]), rot)
    m = (f < 1) & (hollow > 1) & canvas.free[sl] & (xyz[2] < dome[sl[0], sl[1]] - _F(4))
    canvas.paint(m, sl, _F(liver_hu + rng.uniform(5, 20)) + _F(8) * fat_tex[sl])


def _paint_stomach(rng: np.random.Generator, patient: _Patient, canvas: _Canvas, dome: np.ndarray,
                   fat_tex: np.ndarray) -> None:
    """Stomach under the left dome: enhancing wall, gas anteriorly above fluid or mottled food."""
    p = patient
    lat, ant, _ = p.cavity
    st_c = p.to_grid(0.35 * lat, -0.3 * ant, p.liver_top - rng.uniform(25, 45))
    st_ax = (rng.uniform(35, 50), rng.uniform(30, 42), rng.uniform(40, 60))
    b = p.grid.box(st_c - max(st_ax), st_c + max(st_ax))
    if b is None:
        return
    sl, xyz = b
    f = _quadric(xyz, st_c, st_ax, _rot(yaw=rng.uniform(-0.6, 0.0), pitch=rng.uniform(-0.3, 0.3)))
    m = (f < 1) & canvas.free[sl] & (xyz[2] < dome[sl[0], sl[1]] - _F(4))
    level = _F(st_c[1] - st_ax[1] * rng.uniform(0.1, 0.7))
    content = np.where(xyz[1] < level, _F(-1000), _F(rng.uniform(5, 30)) + _F(10) * fat_tex[sl])
    if rng.random() < 0.35:  # food: mottled
        content = np.where(xyz[1] < level, content, _F(-40) + _F(60) * fat_tex[sl])
    canvas.paint(m, sl, np.where(f > 0.88, _F(rng.uniform(60, 95)), content))


def _paint_pancreas(rng: np.random.Generator, patient: _Patient, spine: _Spine, canvas: _Canvas,
                    fat_tex: np.ndarray) -> None:
    """Pancreas: tail at the splenic hilum, body across the spine, head by the duodenum."""
    p = patient
    lat, _, post = p.cavity
    front = spine.v - spine.radius  # anterior surface of the vertebral body
    pw = p.liver_bottom + rng.uniform(0, 25)
    pts = [p.to_grid(0.55 * lat, 0.15 * post, pw + 25), p.to_grid(0.25 * lat, front - 20, pw + 12),
           p.to_grid(-0.05 * lat, front - 35, pw), p.to_grid(-0.2 * lat, front - 30, pw - 15)]
    pan = np.zeros(p.shape, bool)
    _segments(p.grid, [(pts[i], pts[i + 1], 9.0, 11.0) for i in range(3)], pan, where=canvas.free)
    canvas.hu[pan] = (rng.uniform(85, 110) + 12 * fat_tex)[pan]
    canvas.free &= ~pan


def _paint_bowel(rng: np.random.Generator, patient: _Patient, canvas: _Canvas) -> None:
    """Colon (hepatic flexure -> transverse -> splenic flexure) and 20-35 small-bowel loops."""
    p = patient
    lat, ant, post = p.cavity
    bottom = p.liver_bottom
    colon = [p.to_grid(-0.65 * lat, -0.15 * ant, bottom - 20),
             p.to_grid(-0.55 * lat, -0.45 * ant, bottom + rng.uniform(0, 25)),
             p.to_grid(0.0, -0.7 * ant, bottom - rng.uniform(0, 20)),
             p.to_grid(0.6 * lat, -0.3 * ant, bottom + rng.uniform(30, 60)),
             p.to_grid(0.7 * lat, 0.1 * post, bottom - 20)]
    bowel_tex = _smooth_noise(rng, p.shape, p.grid.spacing, 2.5)
    for i in range(len(colon) - 1):
        _paint_bowel_segment(rng, p.grid, canvas, bowel_tex, colon[i], colon[i + 1], rng.uniform(16, 24), 3.0,
                             "faeces" if rng.random() < 0.6 else "fluid", 55)
    for _ in range(int(rng.integers(20, 36))):
        p0 = p.to_grid(rng.uniform(-0.6, 0.7) * lat, rng.uniform(-0.85, 0.2) * ant,
                       rng.uniform(0, bottom + 0.3 * p.liver_height))
        kind = rng.random()
        content = "gas" if kind < 0.2 else "level" if kind < 0.35 else "fluid"
        _paint_bowel_segment(rng, p.grid, canvas, bowel_tex, p0, p0 + rng.normal(0, 25, 3), rng.uniform(9, 15), 2.5,
                             content, rng.uniform(60, 100))


def _paint_bowel_segment(rng: np.random.Generator, grid: _Grid, canvas: _Canvas, bowel_tex: np.ndarray,
                         p0, p1, radius: float, wall: float, content: str, wall_hu: float) -> None:
    """A bowel segment: enhancing wall around gas / fluid / faeces, only in still-free space."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    b = grid.box(np.minimum(p0, p1) - radius, np.maximum(p0, p1) + radius)
    if b is None:
        return
    sl, (x, y, z) = b
    d = p1 - p0
    t = _segment_param(x, y, z, p0, d)
    dist = np.sqrt((x - _F(p0[0]) - t * _F(d[0])) ** 2 + (y - _F(p0[1]) - t * _F(d[1])) ** 2
                   + (z - _F(p0[2]) - t * _F(d[2])) ** 2)
    m = (dist < radius) & canvas.free[sl]
    if content == "gas":
        val = np.full(m.shape, -1000, _F)
    elif content == "level":  # air-fluid level: gas rises anteriorly (smaller y) in a supine patient
        val = np.where(np.broadcast_to(y < _F(p0[1] + rng.uniform(-5, 5)), m.shape), _F(-1000), _F(15))
    elif content == "faeces":
        bt = bowel_tex[sl]
        val = np.where(bt > 0.3, _F(-1000), _F(-150) + _F(120) * bt)
    else:
        val = np.full(m.shape, rng.uniform(5, 35), _F)
    val = np.where(dist < radius - wall, val, _F(wall_hu))
    canvas.paint(m, sl, val)


# ----------------------------------------------------------------------------------------------------------
# tumors
# ----------------------------------------------------------------------------------------------------------
def _place_tumors(rng: np.random.Generator, params: PhantomParams, patient: _Patient, canvas: _Canvas,
                  liver: _Liver, seg: np.ndarray) -> int:
    """Paint tumor_count lesions into the liver (label 2 in ``seg``); returns how many were placed."""
    spacing = patient.grid.spacing
    box = liver.box
    edt = ndi.distance_transform_edt(liver.mask[box], sampling=spacing)
    n_tumors = int(rng.integers(params.tumor_count[0], params.tumor_count[1] + 1))
    mix = np.asarray(params.tumor_type_mix, float)
    mix = mix / mix.sum()
    ok_region = liver.mask | canvas.free  # a bulging tumor may push into fat, never into another organ
    centers = []
    for _ in range(n_tumors):
        radius = rng.uniform(*params.tumor_diameter_mm) / 2
        if rng.random() < params.surface_tumor_probability:
            cand = np.flatnonzero((edt > 0) & (edt <= max(0.5 * radius, patient.spacing_xy)))
        else:
            cand = np.flatnonzero(edt >= max(0.75 * radius, 2.0))
        if cand.size == 0:
            cand = np.flatnonzero(edt >= 0.6 * edt.max())
        for _try in range(10):  # avoid heavy overlap with earlier lesions; keep the last try if all overlap
            idx = np.unravel_index(int(cand[rng.integers(cand.size)]), edt.shape)
            c = np.array([(idx[d] + box[d].start) * spacing[d] for d in range(3)])
            if all(np.linalg.norm(c - c2) > 0.8 * (radius + r2) for c2, r2 in centers):
                break
        centers.append((c, radius))
        kind = TUMOR_TYPES[int(rng.choice(3, p=mix))]
        contrast = _draw_contrast(rng, params, kind)
        _paint_tumor(rng, params, patient.grid, canvas.hu, seg, ok_region, c, radius, kind, contrast, liver.base_hu)
    return n_tumors


def _draw_contrast(rng: np.random.Generator, params: PhantomParams, kind: str) -> float:
    """Lesion minus liver (HU) for a lesion of this kind."""
    if kind == "hypo":
        return _u(rng, params.contrast_hypo)
    if kind == "iso":
        return _u(rng, params.contrast_iso) * (1 if rng.random() < 0.4 else -1)
    return _u(rng, params.contrast_hyper)


def _paint_tumor(rng: np.random.Generator, params: PhantomParams, grid: _Grid, hu: np.ndarray, seg: np.ndarray,
                 ok_region: np.ndarray, c: np.ndarray, radius: float, kind: str, contrast: float,
                 liver_hu: float) -> None:
    """A lobulated, radially perturbed lesion with a soft margin, optional enhancing rim and necrotic core."""
    lobes = [(c, radius)]
    for _ in range(int(rng.integers(0, 3)) if radius > 4 else 0):
        off = _unit(rng.standard_normal(3)) * radius * rng.uniform(0.4, 0.75)
        lobes.append((c + off, radius * rng.uniform(0.4, 0.7)))
    ext = max(np.linalg.norm(cc - c) + rr for cc, rr in lobes) * 1.25 + 1
    sl, xyz = grid.box(c - ext, c + ext)
    # three random plane waves modulate the radius (an irregular, not spherical, outline)
    waves = [(rng.standard_normal(3) * rng.uniform(1.5, 3.5), rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.12))
             for _ in range(3)]
    s = None
    for cc, rr in lobes:
        d = _local(xyz, cc)
        dist = np.sqrt(d[0] ** 2 + d[1] ** 2 + d[2] ** 2) + _F(1e-3)
        pert = sum(_F(a) * np.cos((_F(w[0]) * d[0] + _F(w[1]) * d[1] + _F(w[2]) * d[2]) / dist + _F(ph))
                   for w, ph, a in waves)
        si = dist / (_F(rr) * (1 + pert))
        s = si if s is None else _smin(s, si, 0.2)
    inside = (s < 1) & ok_region[sl]
    # the centre voxel is always kept, so a lesion never vanishes between slices
    ci = tuple(int(round(c[d] / grid.spacing[d])) - sl[d].start for d in range(3))
    inside[ci] = True
    edge = rng.uniform(0.1, 0.35)
    w_in = np.clip((1 - s) / _F(edge), 0, 1)
    w_in = w_in * w_in * (3 - 2 * w_in)  # smoothstep: a soft, infiltrative-looking margin
    tex = _smooth_noise(rng, s.shape, grid.spacing, 1.5) * _F(3 + 0.12 * abs(contrast))
    core = _F(liver_hu + contrast) + tex
    if kind == "hypo" and 2 * radius >= 15 and rng.random() < params.necrosis_probability:
        r_core = rng.uniform(0.3, 0.6)
        nec = np.clip((r_core - s) / _F(0.15), 0, 1)
        core = core * (1 - nec) + _F(max(5.0, liver_hu + contrast - rng.uniform(15, 35))) * nec
    if rng.random() < params.rim_probability:
        rim_w = min(0.4, rng.uniform(1.5, 3.0) / radius)
        rim = np.clip(1 - np.abs(s - _F(1 - rim_w / 2)) / _F(rim_w / 2), 0, 1)
        core = core * (1 - rim) + _F(liver_hu + _u(rng, params.rim_contrast)) * rim
        w_in = np.maximum(w_in, (s < 1).astype(_F))  # rim lesions have a sharp border
    local = hu[sl]
    blend = np.where(inside, w_in, 0).astype(_F)
    local[...] = local * (1 - blend) + core * blend
    seg[sl][inside] = 2


# ----------------------------------------------------------------------------------------------------------
# ribs and image formation
# ----------------------------------------------------------------------------------------------------------
def _paint_ribs(rng: np.random.Generator, patient: _Patient, hu: np.ndarray, body: _Body,
                bone_tex: np.ndarray) -> None:
    """Ribs in the wall, slanting down toward the front, above a costal margin that is lower at the back."""
    p = patient
    Z = p.z
    theta = p.theta
    inner_wall = (p.semi_lat - p.fat_lat, p.semi_ant - p.fat_ant, p.semi_post - p.fat_post)
    rib_zone = body.muscle_out & ~(p.outline(*(a - 7 for a in inner_wall)) < 1)
    post_frac = np.abs(theta) / _F(math.pi)  # 0 anterior .. 1 posterior
    rib_period = rng.uniform(28, 36)
    rib_phase = Z + _F(rng.uniform(130, 180)) * (1 - post_frac) + _F(rng.uniform(0, rib_period))
    costal = _F(p.liver_top - rng.uniform(10, 30)) - _F(rng.uniform(90, 140)) * post_frac  # ribs exist above this
    ribs = rib_zone & ((rib_phase % _F(rib_period)) < _F(9)) & (Z > costal) & (np.abs(theta) > 0.45)
    rib_core = p.outline(*(a - 2 for a in inner_wall)) < 1
    hu[ribs] = np.where(rib_core, _F(rng.uniform(350, 550)), _F(150))[ribs] + (60 * bone_tex)[ribs]


def _form_image(rng: np.random.Generator, params: PhantomParams, patient: _Patient, hu: np.ndarray) -> np.ndarray:
    """Scanner blur (the label map stays crisp), in-plane correlated quantum noise, clip, round to int16."""
    sxy, sz = patient.spacing_xy, patient.slice_mm
    psf_xy, psf_z = _u(rng, params.psf_xy_mm), _u(rng, params.psf_z_mm)
    hu = ndi.gaussian_filter(hu, (psf_xy / sxy, psf_xy / sxy, psf_z / sz), truncate=3.0)
    noise = rng.standard_normal(patient.shape, dtype=_F)
    corr = _u(rng, params.noise_corr_mm)
    noise = ndi.gaussian_filter(noise, (corr / sxy, corr / sxy, 0), truncate=3.0)
    noise *= _F(_u(rng, params.noise_sd) / (float(noise[::2, ::2, ::2].std()) or 1.0))
    hu += noise
    np.clip(hu, -1024, 3071, out=hu)
    return np.rint(hu).astype(np.int16)


def _affine(patient: _Patient) -> np.ndarray:
    """Voxel -> RAS world (mm): i toward the left, j posterior, k superior; centred in-plane and along z."""
    sxy, sz = patient.spacing_xy, patient.slice_mm
    affine = np.diag([-sxy, -sxy, sz, 1.0])
    affine[:3, 3] = [patient.half, patient.half, -(patient.shape[2] - 1) / 2 * sz]
    return affine
