"""The replay over DDS: the real node as a subprocess (console script ``localizer_node``,
use_sim_time), the bag played to it by bags.player (original stamps, /clock), its outputs
recorded into a RunOutcome."""
from __future__ import annotations

from contextlib import contextmanager
import logging
import os
from pathlib import Path
import random
import signal
import subprocess
import sys

import numpy as np
import rclpy
import yaml

from geodistill_ros.bags import player as bp
from geodistill_ros.node.messages import yaw_from_quaternion
from geodistill_ros.replay.records import FrameOutput, ReplayConfig, RunOutcome

LOG = logging.getLogger('geodistill_ros.replay.evaluate')


def write_params_file(values: dict, path: Path) -> Path:
    """A ``/**: ros__parameters:`` file with dotted names nested."""
    tree: dict = {}
    for name, value in values.items():
        *parents, leaf = name.split('.')
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': tree}}, sort_keys=False))
    return path


@contextmanager
def _environment(changes: dict):
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def node_command(params_file: Path, bag: bp.DriveBag, values: dict) -> list[str]:
    """The node's command line: console script, params file, sim time, topic remaps."""
    script = Path(sys.executable).parent / 'localizer_node'
    module = 'geodistill_ros.node.localizer_node'
    cmd = [str(script)] if script.exists() else [sys.executable, '-m', module]
    image = 'image/compressed' if values['image_transport'] == 'compressed' else 'image'
    remaps = {image: bag.topic('image'), 'camera_info': bag.topic('camera_info'),
              'fix': bag.topic('fix_input'), **bp.OUTPUT_TOPICS}
    if bag.topic('odometry') is not None:
        remaps['twist'] = bag.topic('odometry')
    cmd += ['--ros-args', '--params-file', str(params_file), '-p', 'use_sim_time:=true']
    for name, topic in remaps.items():
        cmd += ['-r', f'{name}:={topic}']
    return cmd


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])
    except OSError:
        return ''


FASTDDS_LARGE_MESSAGES_PROFILE = '''<?xml version="1.0" encoding="UTF-8"?>
<!-- geodistill-replay: shared-memory segments large enough for raw camera images. -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>geodistill_shm</transport_id>
        <type>SHM</type>
        <segment_size>33554432</segment_size>
        <maxMessageSize>16777216</maxMessageSize>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>geodistill_udp</transport_id>
        <type>UDPv4</type>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="geodistill_replay" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>geodistill_shm</transport_id>
          <transport_id>geodistill_udp</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
      </rtps>
    </participant>
  </profiles>
</dds>
'''
"""Fast DDS defaults to 512 KiB shared-memory segments: a raw KITTI image (1.4 MB) then
goes over UDP in fragments, and the node's best-effort image subscription loses most of
them on loopback. This profile (32 MiB segments) carries it through shared memory."""


def dds_environment(config: ReplayConfig, out_dir: Path) -> dict:
    """Environment for the node and the player: isolation, the large-message profile."""
    env = {}
    if config.isolated:
        env = {'ROS_DOMAIN_ID': str(random.SystemRandom().randint(1, 100)),
               'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    rmw = os.environ.get('RMW_IMPLEMENTATION') or 'rmw_fastrtps_cpp'
    if config.large_message_profile and rmw.startswith('rmw_fastrtps'):
        if os.environ.get('FASTDDS_DEFAULT_PROFILES_FILE'):
            LOG.info('using your Fast DDS profile %s (raw images need shared-memory segments '
                     'larger than the image)', os.environ['FASTDDS_DEFAULT_PROFILES_FILE'])
        else:
            path = out_dir / 'fastdds_profile.xml'
            path.write_text(FASTDDS_LARGE_MESSAGES_PROFILE)
            env['FASTDDS_DEFAULT_PROFILES_FILE'] = str(path)
    return env


def run_dds(bag: bp.DriveBag, values: dict, config: ReplayConfig, out_dir: Path) -> RunOutcome:
    """The node as a subprocess (console script), the bag played to it over DDS."""
    env = dds_environment(config, out_dir)
    cmd = node_command(write_params_file(values, out_dir / 'node.yaml'), bag, values)
    log_path = out_dir / 'node.log'
    heading = bp.HeadingFeed(config.heading, config.heading_noise_deg, config.seed,
                             config.gnss_velocity_noise_mps)
    with _environment(env), open(log_path, 'w') as node_log:
        LOG.info('starting the node: %s', ' '.join(cmd))
        proc = subprocess.Popen(cmd, stdout=node_log, stderr=subprocess.STDOUT,
                                env=dict(os.environ))
        context = rclpy.Context()
        rclpy.init(args=[], context=context)
        player = None
        try:
            player = bp.BagPlayer(bag, context, heading)

            def alive():
                if proc.poll() is None:
                    return None
                return f'the node exited ({proc.returncode}):\n{_tail(log_path)}'
            player.wait_for_node(alive, config.startup_timeout_s)
            LOG.info('node ready; playing %s (%s)', bag.path,
                     'paced' if config.rate is None else f'rate {config.rate:g}')
            log = player.play(bp.play_events(bag, config.max_frames), config.rate,
                              config.frame_timeout_s)
        finally:
            if player is not None:
                player.close()
            rclpy.shutdown(context=context)
            _stop(proc)
    outputs, single = _frame_outputs(log.poses, log), _frame_outputs(log.poses_single, log)
    diag = log.diagnostics
    outcomes = list(log.outcomes.values())
    counts = {'images': len(log.image_stamps), 'outputs': len(outputs),
              'low_confidence': int(diag.get('low_confidence_total', 0)),
              'rejected': {k[len('rejected_'):-len('_total')]: int(v) for k, v in diag.items()
                           if k.startswith('rejected_') and k.endswith('_total')},
              'dropped_busy': int(diag.get('dropped_busy_total', 0)),
              'not_received': outcomes.count('lost'), 'timeouts': outcomes.count('timeout'),
              'resent': log.resent, 'node_images_received': int(diag.get('images_total', 0))}
    notes = [f'not published (type not installed): {t}' for t in log.skipped_topics]
    fusion = {k: v for k, v in diag.items() if k.startswith(('fusion', 'odometry_rejected'))}
    return RunOutcome(list(log.image_stamps), outputs, counts,
                      {'p50': float(diag.get('latency_p50_ms', 'nan')),
                       'p95': float(diag.get('latency_p95_ms', 'nan')),
                       'fusion_p50': float(diag.get('latency_fusion_p50_ms', 'nan'))},
                      log.wall_s, notes,
                      single_outputs=single, fusion=fusion)


def _frame_outputs(poses: dict, log) -> dict[int, FrameOutput]:
    """PoseWithCovarianceStamped received per stamp -> FrameOutput (latency from sending)."""
    outputs = {}
    for stamp, (msg, received) in poses.items():
        cov = np.array(msg.pose.covariance).reshape(6, 6)
        sent = log.sent_at.get(stamp)
        outputs[stamp] = FrameOutput(stamp, (msg.pose.pose.position.x, msg.pose.pose.position.y),
                                     yaw_from_quaternion(msg.pose.pose.orientation),
                                     cov[:2, :2].copy(), None,
                                     None if sent is None else received - sent)
    return outputs
