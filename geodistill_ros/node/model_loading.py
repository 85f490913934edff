"""Build the node's Localizer from its parameters: files only (never the network).

``resolve_device`` turns the ``device`` parameter into the device used and the one log
line the user needs when CUDA is missing; ``load_localizer`` loads the checkpoints (or the
embedded default model when ``location_checkpoint`` is '') and checks the model fits the
configured camera. Errors name the file and the fix; the node refuses to start on them.
"""
from __future__ import annotations

import inspect
import logging
from pathlib import Path

from geodistill_ros.node.config import NodeConfig
from geodistill_ros.node.params import ParameterError

LOG = logging.getLogger(__name__)


def resolve_device(requested: str, cuda_available: bool | None = None) -> tuple[str, str | None]:
    """('cuda' | 'cpu', fallback message or None) for device 'auto' | 'cuda' | 'cpu'."""
    if requested not in ('auto', 'cuda', 'cpu'):
        raise ParameterError(f"device must be 'auto', 'cuda' or 'cpu', got {requested!r}")
    if cuda_available is None:
        import torch
        cuda_available = torch.cuda.is_available()
    if requested == 'cpu':
        return 'cpu', None
    if cuda_available:
        return 'cuda', None
    if requested == 'auto':
        return 'cpu', "device 'auto': CUDA is not available, running on CPU"
    return 'cpu', ("device 'cuda' requested but CUDA is not available "
                   '(torch.cuda.is_available() is False): falling back to CPU')


def load_localizer(config: NodeConfig, device: str, log=LOG.warning):
    """The Localizer for ``config`` on ``device`` (already resolved); ``log`` warns."""
    from geodistill_core.localizer import Localizer, YawSearchUnsupported

    precision = config.precision
    if device == 'cpu' and precision != 'float32':
        log(f'precision {precision} runs on CUDA only: using float32 on CPU')
        precision = 'float32'
    auto = config.yaw_search == 'auto'  # rotation where it can run, else none (logged)
    if config.backend != 'torch' and config.yaw_search in ('auto', 'rotation'):
        if not auto:
            raise ParameterError(f"yaw_search 'rotation' runs on the torch backend only (it "
                                 f"projects the ground features at many yaws); backend is "
                                 f"{config.backend!r}: set backend to 'torch' or yaw_search "
                                 "to 'none'")
        log(f"yaw_search 'auto': the rotation search needs the torch backend (backend is "
            f"{config.backend!r}): publishing the prior's yaw")
    if auto:
        search = {'yaw_search': 'rotation' if config.backend == 'torch' else 'none'}
    else:
        search = {} if config.yaw_search == 'model' else {'yaw_search': config.yaw_search}
    try:
        localizer, source = _build(Localizer, config, device, precision, search)
    except YawSearchUnsupported as err:
        if not auto:
            raise ParameterError(f'yaw_search {config.yaw_search!r}: {err}; set yaw_search '
                                 "to 'none' or 'model'") from err
        log(f"yaw_search 'auto': no rotation search for this model ({err}): publishing "
            "the prior's yaw")
        localizer, source = _build(Localizer, config, device, precision,
                                   {'yaw_search': 'none'})
    check_camera_model(localizer, config.camera_model, source)
    return localizer


def _build(Localizer, config: NodeConfig, device: str, precision: str, search: dict):
    """(Localizer, what it was loaded from) for the node's checkpoint parameters."""
    if not config.location_checkpoint:
        if config.orientation_checkpoint:
            raise ParameterError('orientation_checkpoint is set but location_checkpoint is '
                                 "not: set both, or neither for the default model")
        localizer = Localizer.default(camera_model=config.camera_model, device=device,
                                      precision=precision, backend=config.backend, **search)
        source = 'the embedded default model'
    else:
        for name in ('location_checkpoint', 'orientation_checkpoint'):
            path = getattr(config, name)
            if path and not Path(path).exists():
                raise ParameterError(f'{name} {path!r} does not exist: set it to a checkpoint '
                                     "file, or '' for the default model")
        localizer = Localizer.from_checkpoints(
            config.location_checkpoint, config.orientation_checkpoint or None, device=device,
            precision=precision, backend=config.backend, **search)
        source = config.location_checkpoint
    return localizer, source


def estimates_orientation(localizer) -> bool:
    """Whether the localizer estimates yaw itself: an orientation model or the rotation
    search (else its yaw is the prior's)."""
    return (getattr(localizer, 'orientation_model', None) is not None
            or getattr(localizer, 'yaw_search', 'none') == 'rotation')


def accepts_yaw_prior_range(localizer) -> bool:
    """Whether ``localize`` takes ``yaw_prior_range_deg`` (the orientation search range)."""
    try:
        return 'yaw_prior_range_deg' in inspect.signature(localizer.localize).parameters
    except (TypeError, ValueError):
        return False


def crop_resolution_note(localizer, crop_size_m: float) -> str | None:
    """A warning when the crop gives the model another resolution than it was trained at."""
    trained = getattr(localizer, 'recommended_meters_per_px', None)
    size_px = getattr(localizer, 'sat_size_px', None)
    if not trained or not size_px:
        return None
    used = crop_size_m / size_px
    if abs(used / trained - 1.0) <= 0.1:
        return None
    return (f'crop_size_m {crop_size_m:g} gives the model {used:.3f} m/px but it was trained '
            f'at {trained:.3f} m/px: set crop_size_m to about {trained * size_px:.1f}')


def check_camera_model(localizer, camera_model: str, source: str = 'the model') -> None:
    if localizer.camera_model != camera_model:
        raise ParameterError(f'camera_model is {camera_model!r} but {source} expects '
                             f'{localizer.camera_model!r} images: set camera_model or '
                             'location_checkpoint to match')
