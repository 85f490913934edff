"""`geodistill-export --checkpoint DIR --out DIR`: a checkpoint as ONNX + its metadata.

    geodistill-export --checkpoint geodistill_core/assets/default_pinhole_location \
        --out outputs/onnx/default_pinhole_location

writes location.onnx, location.json and config.json (orientation.* for an orientation
checkpoint) into --out; see onnx_export.py.
"""
from __future__ import annotations

import argparse
import logging
import sys

from geodistill_core.export.onnx_export import OPSET, export_checkpoint


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geodistill-export', description=__doc__.split('\n')[0])
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint directory (config.json + model.safetensors)')
    parser.add_argument('--out', required=True, help='output directory (replaced atomically)')
    parser.add_argument('--opset', type=int, default=OPSET, help=f'ONNX opset (default {OPSET})')
    options = parser.parse_args(args)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    try:
        out = export_checkpoint(options.checkpoint, options.out, options.opset)
    except (FileNotFoundError, ValueError, RuntimeError, TypeError) as error:
        print(f'geodistill-export: {error}', file=sys.stderr)
        return 1
    print(f'geodistill-export: wrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
