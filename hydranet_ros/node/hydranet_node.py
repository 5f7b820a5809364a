"""hydranet_node: camera images in; metric depth, semantic labels and their class map out.

A lifecycle node (``autostart`` configures and activates it at start). Configuring loads the
model; activating subscribes to ``image`` (or ``image/compressed``) and ``camera_info`` and
starts the inference thread, which reads those topics itself, always processes the newest
frame and drops older ones, and the publishing thread that finishes frames when pipelining.
Outputs carry the input image's header: ``depth/image`` (32FC1 metres, NaN invalid),
``depth/camera_info``, ``segmentation/labels``, ``segmentation/color``,
``segmentation/confidence``, ``segmentation/label_info`` (latched) and ``perception``
(all of one frame in a hydranet_ros/DepthSegmentation), plus ``/diagnostics``.
"""
import os
import signal
import sys
import threading
import time
from typing import Dict, List, Optional

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import ExternalShutdownException
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.serialization import deserialize_message
from rcl_interfaces.msg import SetParametersResult
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from diagnostic_msgs.msg import DiagnosticArray
from std_msgs.msg import Header

from hydranet_ros.msg import DepthSegmentation, LabelInfo

from ..engine import ImageFormatError, InferenceEngine, overlay_labels
from ..engine.default_model import default_model_path
from ..engine.memory import keep_large_buffers, release_unused_heap
from . import diagnostics, label_info, output_images
from .camera_info import scale_camera_info
from .conversions import ImageConversionError, array_to_image, quiet_decoder_warnings
from .engine_holder import EngineHolder
from .frame_in_flight import FrameInFlight
from .frame_slot import LatestFrameSlot
from .handoff import Handoff
from .inference_worker import InferenceWorker
from .input_checks import (CAMERA_INFO, ENCODING, OUT_OF_MEMORY, REJECTION_KINDS, UNDECODABLE,
                           RejectedInput, check_camera_info, check_compressed, check_image)
from .input_frames import ReceivedFrame, decode_rgb
from .out_of_memory import is_out_of_memory, release_memory
from .output_publishers import OutputPublishers
from .pulled_input import PulledInput, received_perf_s
from .serialized_image import SerializedImage, SerializedImageError, serialize_image
from .parameters import (ENGINE_PARAMETERS, NodeSettings, PARAMETER_SPECS, SPECS, check_settings,
                         check_value, descriptor)
from .qos import input_qos, latched_qos, output_qos
from .rejection_log import RejectionLog
from .transport_gaps import SequenceGaps
from .ros_logging import forward_package_logs

NODE_NAME = 'hydranet_node'
DIAGNOSTICS_PERIOD_S = 1.0
DIAGNOSTICS_QOS_DEPTH = 10
CAMERA_INFO_GRACE_S = 2.0
WARNING_THROTTLE_S = 10.0
MS_PER_S = 1000.0


class ConfigurationError(ValueError):
    """A parameter given at start is invalid; the message says which and why."""


class HydraNetNode(LifecycleNode):
    """Lifecycle node that runs HydraNet on camera images (see the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._settings = self._declare_parameters()
        self._state = 'unconfigured'
        self._stats = diagnostics.NodeStatistics()
        self._slot: LatestFrameSlot[ReceivedFrame] = LatestFrameSlot()
        self._input = PulledInput(self)
        self._camera_info_subscription = None
        self._worker = InferenceWorker(self._next_frame, self._process_frame,
                                       self._on_worker_error, self._input.wake)
        self._handoff: Handoff[FrameInFlight] = Handoff()
        self._publisher_thread = InferenceWorker(self._handoff.take, self._finish_frame,
                                                 self._on_worker_error, self._handoff.close,
                                                 name='publishing')
        self._engines: EngineHolder[NodeSettings, InferenceEngine] = EngineHolder(
            self._build_engine, NodeSettings.engine_key, self._on_engine_swapped,
            self._on_engine_failed)
        self._outputs: Optional[OutputPublishers] = None
        self._label_info_publisher = None
        self._camera_info_lock = threading.Lock()
        self._camera_info: Optional[CameraInfo] = None
        self._scaled_camera_info: Dict[tuple, CameraInfo] = {}
        self._first_image_s: Optional[float] = None
        self._frame_id: Optional[str] = None
        self._last_image_size: Optional[tuple] = None
        self._previous_start_s: Optional[float] = None
        self._previous_end_s: Optional[float] = None
        self._engine_error: Optional[str] = None
        self._rejections_reported = 0
        self._rejection_log = RejectionLog(self.get_logger().warning)
        self._activated_s: Optional[float] = None
        self._input_stale_warned = False
        self._processing_since_s: Optional[float] = None
        self._sequence_gaps = SequenceGaps()
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH)
        self._diagnostics_timer = self.create_timer(DIAGNOSTICS_PERIOD_S,
                                                    self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> NodeSettings:
        values = {}
        for spec in PARAMETER_SPECS:
            values[spec.name] = self.declare_parameter(
                spec.name, spec.default, descriptor(spec)).value
        for name, value in values.items():
            reason = check_value(name, value, check_files=False)
            if reason:
                raise ConfigurationError(reason)
        settings = NodeSettings(**values)
        reason = check_settings(settings)
        if reason:
            raise ConfigurationError(reason)
        return settings

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in SPECS}
        for name, value in changes.items():
            if SPECS[name].read_only:
                return SetParametersResult(successful=False,
                                           reason=f'{name} is read-only; restart the node')
            reason = check_value(name, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        if not changes:
            return SetParametersResult(successful=True)
        settings = self._settings.replace(changes)
        reason = check_settings(settings)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        self._settings = settings
        self._apply_settings(settings, changes)
        return SetParametersResult(successful=True)

    def _apply_settings(self, settings: NodeSettings, changes: dict) -> None:
        if self._state == 'unconfigured':
            return
        if self._outputs is not None:
            self._outputs.sync(settings)
        if ENGINE_PARAMETERS & set(changes):
            serving = self._engines.settings
            if self._engines.request(settings):
                self.get_logger().info(
                    'rebuilding the engine in the background for ' +
                    ', '.join(f'{k}={v!r}' for k, v in changes.items()
                              if k in ENGINE_PARAMETERS) +
                    '; the current engine serves until the new one is ready')
            elif serving is not None and serving.engine_key() == settings.engine_key():
                self._engine_error = None  # back to what serves: an earlier failure is moot
        if {'confidence_threshold', 'min_depth_m', 'max_depth_m'} & set(changes):
            self._publish_label_info()

    # ------------------------------------------------------------------ engine
    def _build_engine(self, settings: NodeSettings) -> InferenceEngine:
        model = settings.model_path or None
        if model is None and not os.path.isfile(default_model_path()):
            raise FileNotFoundError(
                f'model_path is empty and the bundled default model is missing '
                f'({default_model_path()}); set model_path to a HydraNet checkpoint')
        engine = InferenceEngine(
            model, device=settings.device, backend=settings.backend,
            precision=settings.precision, input_size=settings.inference_size,
            threads=settings.threads or None, preset=settings.preset or None,
            fallback_to_cpu=settings.device_fallback)
        warm_up_size = settings.inference_size or self._last_image_size
        if warm_up_size is not None:
            engine.warm_up(*warm_up_size)
        release_unused_heap()  # the temporaries of loading, exporting and warming up
        return engine

    def _on_engine_swapped(self, engine: InferenceEngine, settings: NodeSettings) -> None:
        self._engine_error = None
        self.get_logger().info(f'now serving {label_info.model_name(settings.model_path)} '
                               f'with {engine.describe()}, {_network_input(settings)}')
        self._publish_label_info()

    def _on_engine_failed(self, settings: NodeSettings, error: Exception) -> None:
        self._engine_error = f'{type(error).__name__}: {error}'
        serving = self._engines.settings
        still = (f'still serving {label_info.model_name(serving.model_path)}'
                 if serving is not None else 'no engine is serving')
        self.get_logger().error(f'cannot build the engine ({self._engine_error}); {still}')

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load the model and create the publishers; FAILURE (never a crash) if it cannot."""
        settings = self._settings
        try:
            engine = self._engines.load(settings)
        except Exception as error:  # a bad model or device must not kill the node
            self._engine_error = f'{type(error).__name__}: {error}'
            self.get_logger().error(f'configure failed: cannot load the model: '
                                    f'{self._engine_error}')
            return TransitionCallbackReturn.FAILURE
        self._engine_error = None
        self._outputs = OutputPublishers(
            self, output_qos(settings.output_qos, settings.output_qos_depth))
        self._outputs.sync(settings)
        self._label_info_publisher = self.create_publisher(
            LabelInfo, 'segmentation/label_info', latched_qos())
        self._state = 'inactive'
        self.get_logger().info(f'configured: {label_info.model_name(settings.model_path)} '
                               f'({engine.config.num_classes} classes) with '
                               f'{engine.describe()}, {_network_input(settings)}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe to the camera and start the inference thread."""
        settings = self._settings
        qos = input_qos(settings.input_qos, settings.input_qos_depth)
        image_topic = self._image_topic()
        if settings.use_compressed_input:
            self._input.subscribe(CompressedImage, image_topic, qos)
        else:
            self._input.subscribe(Image, 'image', qos, raw=True)
        self._camera_info_subscription = self._input.subscribe(CameraInfo, 'camera_info', qos)
        self._previous_start_s = self._previous_end_s = None
        self._activated_s = time.perf_counter()
        self._input_stale_warned = False
        self._handoff.reopen()
        self._publisher_thread.start()
        self._worker.start()
        self._state = 'active'
        self._publish_label_info()
        self.get_logger().info(f'active: processing {image_topic} with camera_info from '
                               f'{self.resolve_topic_name("camera_info")}')
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Unsubscribe and stop the inference thread after the frame in progress."""
        self._state = 'inactive'
        if not self._worker.stop():
            self.get_logger().warning('the inference thread did not stop in time')
        self._stop_publishing()
        self._destroy_inputs()
        if self._slot.clear():
            self._stats.frame_dropped()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Destroy the publishers and free the engine (and its GPU memory)."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Stop everything."""
        if self._state == 'active':
            self.on_deactivate(state)
        self._release()
        self._state = 'finalized'
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Return to unconfigured after an error in a transition."""
        self.get_logger().error(f'error in state {state.label}: cleaning up')
        if self._worker.running:
            self._worker.stop()
        self._stop_publishing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_publishing(self) -> None:
        """Let the publishing thread finish its frame; a frame still waiting counts as dropped."""
        if self._handoff.close():
            self._stats.frame_dropped()
        if not self._publisher_thread.stop():
            self.get_logger().warning('the publishing thread did not stop in time')

    def _destroy_inputs(self) -> None:
        if self._worker.running:
            return  # the thread still reads them; they go with the node
        self._input.destroy()
        self._camera_info_subscription = None

    def _release(self) -> None:
        self._destroy_inputs()
        if self._outputs is not None:
            self._outputs.destroy()
            self._outputs = None
        if self._label_info_publisher is not None:
            self.destroy_publisher(self._label_info_publisher)
            self._label_info_publisher = None
        engine = self._engines.engine
        self._engines.release()
        with self._camera_info_lock:
            self._camera_info = None
            self._scaled_camera_info.clear()
        self._state = 'unconfigured'
        if engine is not None:
            device = engine.device
            del engine
            release_memory(device)

    # ------------------------------------------------------------------ inputs
    def _next_frame(self, timeout_s: float) -> Optional[ReceivedFrame]:
        """Take every queued camera message (checked, counted); return the newest good frame.

        Runs on the inference thread between frames, so frames that will be dropped cost a
        deserialisation and no executor wake-up.
        """
        ready = self._input.wait(timeout_s)
        started_s = time.perf_counter()
        for subscription in ready:
            messages = self._input.take(subscription)
            if subscription is self._camera_info_subscription:
                for msg, _ in messages:
                    self._on_camera_info(msg)
                continue
            queue_was_full = len(messages) >= self._input.depth(subscription)
            for index, (msg, info) in enumerate(messages):
                if subscription.raw:
                    msg = _image_of(msg)
                self._on_image(msg, info, queue_was_full and index == 0)
        frame = self._slot.take(0.0)
        if frame is not None and ready:
            frame.take_ms = (time.perf_counter() - started_s) * MS_PER_S
        return frame

    def _on_image(self, msg, info: dict, queue_was_full: bool = False) -> None:
        now_s = received_perf_s(info)
        if self._activated_s is not None and now_s < self._activated_s:
            now_s = self._activated_s  # queued before activation: taken as arriving then
        self._count_missing(info, queue_was_full)
        if self._first_image_s is None:
            self._first_image_s = now_s
        frame = ReceivedFrame(msg, now_s)
        try:
            if frame.compressed:
                check_compressed(msg, self._settings.max_input_pixels)
            else:
                check_image(msg, self._settings.max_input_pixels)
        except RejectedInput as error:  # never let it displace a good frame from the slot
            self._note_arrival(now_s, self._stats.frame_received(now_s))
            self._reject(frame, error.kind, str(error))
            return
        dropped = self._slot.put(frame)
        self._note_arrival(now_s, self._stats.frame_received(now_s, dropped))

    def _count_missing(self, info: dict, queue_was_full: bool) -> None:
        """Count frames skipped in the publisher's sequence before this one.

        When the subscription's queue was full, the oldest frames were pushed out while the
        network ran: dropped for newer ones, as designed. Otherwise they were lost on the way.
        """
        gid = info.get('publisher_gid') or {}
        missing = self._sequence_gaps.missing(bytes(gid.get('data', b'')),
                                              info.get('publication_sequence_number'))
        if not missing:
            return
        if queue_was_full:
            self._stats.frames_pushed_out(missing)
            return
        self._stats.frames_lost(missing)
        self.get_logger().warning(
            f'{missing} frame(s) sent on {self._image_topic()} never reached the node (lost '
            f'by a best-effort transport, or pushed out of the input queue of depth '
            f'{self._settings.input_qos_depth}); counted as frames_lost_in_transport',
            throttle_duration_sec=WARNING_THROTTLE_S)

    def _note_arrival(self, now_s: float, gap_s: Optional[float]) -> None:
        stale = self._input_stale_warned
        self._input_stale_warned = False
        if gap_s is None:
            return
        if self._activated_s is not None and now_s - gap_s < self._activated_s:
            gap_s = now_s - self._activated_s  # the previous frame came before activation
        timeout_s = self._settings.input_timeout_s
        if timeout_s <= 0.0 or gap_s <= timeout_s:
            return
        self._stats.input_gap(gap_s)
        if stale:
            self.get_logger().info(f'images resumed on {self._image_topic()} after a gap of '
                                   f'{gap_s:.1f} s')

    def _on_camera_info(self, msg: CameraInfo) -> None:
        try:
            check_camera_info(msg)
        except RejectedInput as error:
            self._stats.camera_info_rejected(str(error))
            with self._camera_info_lock:
                kept = self._camera_info is not None
            self._rejection_log.record(CAMERA_INFO, (
                f'rejected camera_info (stamp {_stamp_text(msg.header)}, frame '
                f'{msg.header.frame_id!r}): {error}; ' +
                ('the last valid one is still used' if kept else
                 'depth/camera_info is not published until a valid one arrives')))
            return
        with self._camera_info_lock:
            self._camera_info = msg
            self._scaled_camera_info.clear()

    def _camera_info_for(self, header: Header, width: int, height: int) -> Optional[CameraInfo]:
        with self._camera_info_lock:
            info = self._camera_info
            if info is None:
                return None
            key = (width, height)
            scaled = self._scaled_camera_info.get(key)
            if scaled is None:
                scaled = scale_camera_info(info, width, height)
                self._scaled_camera_info[key] = scaled
        scaled.header = header
        return scaled

    # ------------------------------------------------------------------ inference thread
    def _process_frame(self, frame: ReceivedFrame) -> None:
        start_s = self._processing_since_s = time.perf_counter()
        try:
            self._process(frame, start_s)
        finally:
            self._processing_since_s = None

    def _process(self, frame: ReceivedFrame, start_s: float) -> None:
        """Decode the frame and run the network; the publishing thread does the rest."""
        settings = self._settings
        engine = self._engines.engine
        outputs = self._outputs
        if engine is None or outputs is None or self._state != 'active':
            self._stats.frame_dropped()
            return
        if settings.skip_without_subscribers and not outputs.any_subscribed():
            self._stats.frame_skipped()
            return
        try:
            rgb = decode_rgb(frame)
        except (ImageConversionError, ImageFormatError) as error:
            self._reject(frame, UNDECODABLE if frame.compressed else ENCODING, str(error))
            return
        network_start_s = time.perf_counter()
        try:
            network = engine.run_network(rgb, 'rgb8')
        except Exception as error:  # one bad frame must not stop the stream
            self._inference_failed(frame, engine, error)
            return
        network_end_s = time.perf_counter()
        waited_s, period_ms = 0.0, None
        if self._previous_end_s is not None and frame.received_s < self._previous_end_s:
            # The frame arrived while the previous one held this thread: the network is the limit.
            waited_s = self._previous_end_s - frame.received_s
            period_ms = (start_s - self._previous_start_s) * MS_PER_S
        in_flight = FrameInFlight(
            frame=frame, engine=engine, rgb=rgb, network=network, start_s=start_s,
            decode_ms=(network_start_s - start_s) * MS_PER_S,
            network_ms=(network_end_s - network_start_s) * MS_PER_S,
            network_end_s=network_end_s, waited_s=waited_s, period_ms=period_ms)
        if not pipelined(settings.pipeline, engine):
            self._finish_frame(in_flight)
        elif not self._handoff.put(in_flight):  # deactivated meanwhile
            self._stats.frame_dropped()
        self._previous_start_s, self._previous_end_s = start_s, time.perf_counter()

    def _inference_failed(self, frame: ReceivedFrame, engine: InferenceEngine,
                          error: Exception) -> None:
        if is_out_of_memory(error):
            self._reject_out_of_memory(frame, error, engine.device)
            return
        self._stats.frame_failed()
        self.get_logger().error(f'inference failed: {type(error).__name__}: {error}',
                                throttle_duration_sec=WARNING_THROTTLE_S)

    # ------------------------------------------------------------------ publishing thread
    def _finish_frame(self, in_flight: FrameInFlight) -> None:
        """Decode the network's outputs and publish them, while the network runs the next."""
        finish_start_s = time.perf_counter()
        frame, engine, rgb = in_flight.frame, in_flight.engine, in_flight.rgb
        settings = self._settings
        outputs = self._outputs
        if outputs is None:
            self._stats.frame_dropped()
            return
        try:
            prediction = engine.finish(in_flight.network, with_overlay=False)[0]
        except Exception as error:
            self._inference_failed(frame, engine, error)
            return
        inference_ms = in_flight.network_ms + (time.perf_counter() - finish_start_s) * MS_PER_S
        height, width = rgb.shape[:2]
        if self._last_image_size != (height, width):
            release_unused_heap()  # a new size may have built (exported) a network for it
        self._last_image_size = (height, width)
        header = frame.header
        if header.frame_id != self._frame_id:
            self._frame_id = header.frame_id
            self._publish_label_info()
        unlabeled = label_info.unlabeled_id(prediction.labels.dtype)
        output_images.limit_depth_range(prediction.depth, settings.min_depth_m,
                                        settings.max_depth_m)
        output_images.apply_confidence_threshold(prediction.labels, prediction.confidence,
                                                 settings.confidence_threshold, unlabeled)
        want_color = settings.publish_color and outputs.subscribed('color') is not None
        overlay = (overlay_labels(rgb, prediction.labels, engine.colors, settings.overlay_alpha)
                   if want_color else None)
        publish_start_s = time.perf_counter()
        with outputs.lock:
            self._publish_outputs(outputs, settings, header, prediction, overlay, width, height)
        end_s = time.perf_counter()
        self._record_times(in_flight, finish_start_s, end_s, inference_ms,
                           (end_s - publish_start_s) * MS_PER_S)

    def _publish_outputs(self, outputs: OutputPublishers, settings: NodeSettings,
                         header: Header, prediction, overlay, width: int, height: int) -> None:
        """Publish each subscribed output; images go out as serialised bytes, written once."""
        depth_publisher = outputs.subscribed('depth')
        labels_publisher = outputs.subscribed('labels')
        confidence_publisher = outputs.subscribed('confidence')
        info_publisher = outputs.subscribed('camera_info')
        bundle_publisher = outputs.subscribed('bundle')
        color_publisher = outputs.subscribed('color')
        depth = (prediction.depth, '32FC1')
        labels = (prediction.labels, output_images.labels_encoding(prediction.labels))
        confidence = None
        if confidence_publisher or bundle_publisher:
            confidence = (output_images.confidence_pixels(prediction.confidence,
                                                          settings.confidence_encoding),
                          settings.confidence_encoding)
        info = self._camera_info_for(header, width, height)
        if info is None:
            self._warn_missing_camera_info()
        if depth_publisher:
            depth_publisher.publish(serialize_image(*depth, header))
        if info is not None and info_publisher:
            info_publisher.publish(info)
        if labels_publisher:
            labels_publisher.publish(serialize_image(*labels, header))
        if confidence_publisher:
            confidence_publisher.publish(serialize_image(*confidence, header))
        if color_publisher and overlay is not None:
            color_publisher.publish(serialize_image(overlay, 'rgb8', header))
        if bundle_publisher:
            bundle_info = info if info is not None else CameraInfo(header=header, width=width,
                                                                   height=height)
            bundle_publisher.publish(DepthSegmentation(
                header=header, depth=array_to_image(*depth, header),
                labels=array_to_image(*labels, header),
                confidence=array_to_image(*confidence, header), camera_info=bundle_info))

    def _record_times(self, in_flight: FrameInFlight, finish_start_s: float, end_s: float,
                      inference_ms: float, publish_ms: float) -> None:
        frame = in_flight.frame
        # Waiting for the inference thread, and for the publishing thread to finish the
        # previous frame, is the pipeline's limit, not this frame's overhead.
        waited_s = in_flight.waited_s + (finish_start_s - in_flight.network_end_s)
        receive_to_publish_ms = (end_s - frame.received_s) * MS_PER_S
        stamp = frame.header.stamp
        now = self.get_clock().now().nanoseconds
        stamp_to_publish_ms = (now - (stamp.sec * 10**9 + stamp.nanosec)) / 1e6
        self._stats.frame_published(end_s, diagnostics.FrameTimes(
            inference_ms=inference_ms, receive_to_publish_ms=receive_to_publish_ms,
            overhead_ms=receive_to_publish_ms - inference_ms - waited_s * MS_PER_S,
            stamp_to_publish_ms=stamp_to_publish_ms,
            frame_age_ms=(in_flight.start_s - frame.received_s) * MS_PER_S,
            period_ms=in_flight.period_ms, take_ms=frame.take_ms, decode_ms=in_flight.decode_ms,
            publish_ms=publish_ms))

    def _reject(self, frame: Optional[ReceivedFrame], kind: str, reason: str) -> None:
        self._stats.frame_rejected(reason, kind)
        if frame is None:
            self._rejection_log.record(kind, f'rejected a frame ({kind}): {reason}')
            return
        what = 'compressed image' if frame.compressed else 'image'
        verb = 'rejected a malformed' if kind != OUT_OF_MEMORY else 'could not process an'
        self._rejection_log.record(kind, (
            f'{verb} {what} ({kind}; stamp {_stamp_text(frame.header)}, frame '
            f'{frame.header.frame_id!r}): {reason}'))

    def _reject_out_of_memory(self, frame: Optional[ReceivedFrame], error: BaseException,
                              device) -> None:
        release_memory(device)
        size = ''
        if frame is not None and not frame.compressed:
            size = f'{frame.msg.width}x{frame.msg.height} '
        self._reject(frame, OUT_OF_MEMORY, (
            f'out of memory while processing this {size}frame ({type(error).__name__}: '
            f'{str(error).strip()[:200]}); lower max_input_pixels or set '
            f'inference_width/inference_height to bound the network input'))

    def _warn_missing_camera_info(self) -> None:
        if self._first_image_s is None or \
                time.perf_counter() - self._first_image_s < CAMERA_INFO_GRACE_S:
            return
        self.get_logger().warning(
            f'no camera_info received on {self.resolve_topic_name("camera_info")}: outputs '
            f'flow, but depth/camera_info is not published (and the perception bundle has '
            f'an empty calibration) until it arrives; remap camera_info to the calibration '
            f'topic of the camera', throttle_duration_sec=WARNING_THROTTLE_S)

    def _on_worker_error(self, error: BaseException) -> None:
        if is_out_of_memory(error):
            engine = self._engines.engine
            self._reject_out_of_memory(None, error, engine.device if engine else None)
            return
        self._stats.frame_failed()
        self.get_logger().error(f'error while processing a frame: {type(error).__name__}: '
                                f'{error}', throttle_duration_sec=WARNING_THROTTLE_S)

    # ------------------------------------------------------------------ class map, health
    def _publish_label_info(self) -> None:
        publisher = self._label_info_publisher
        engine = self._engines.engine
        serving = self._engines.settings
        if publisher is None or engine is None or serving is None:
            return
        settings = self._settings
        config = engine.config
        low, high = output_images.effective_depth_range(
            config.min_depth_m, config.max_depth_m, settings.min_depth_m, settings.max_depth_m)
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=self._frame_id or '')
        publisher.publish(label_info.label_info_message(
            config, engine.colors, header, settings.confidence_threshold,
            label_info.unlabeled_id(engine.labels_dtype),
            label_info.model_name(serving.model_path), low, high))

    def _publish_diagnostics(self) -> None:
        snapshot = self._stats.snapshot()
        engine = self._engines.engine
        serving = self._engines.settings
        rejected_since_last = snapshot['frames_rejected'] - self._rejections_reported
        self._rejections_reported = snapshot['frames_rejected']
        for kind in REJECTION_KINDS:
            snapshot.setdefault(f'frames_rejected_{kind}', 0)
        with self._camera_info_lock:
            camera_info_known = self._camera_info is not None
        silent_s = self._input_silence_s()
        level, message = diagnostics.health(self._state, snapshot, camera_info_known,
                                            rejected_since_last, self._engine_error,
                                            engine is not None, silent_s,
                                            self._settings.input_timeout_s)
        values = [('state', self._state),
                  ('model', label_info.model_name(serving.model_path) if serving else ''),
                  ('backend', engine.describe() if engine else ''),
                  ('device', str(engine.device) if engine else self._settings.device),
                  ('classes', engine.config.num_classes if engine else 0),
                  ('engine_rebuilding', self._engines.rebuilding),
                  ('engine_error', self._engine_error or ''),
                  ('camera_info_received', camera_info_known),
                  ('seconds_since_last_image', -1.0 if silent_s is None else silent_s)]
        values += sorted(snapshot.items())
        status = diagnostics.diagnostic_status(
            f'{self.get_name()}: depth and segmentation',
            str(engine.device) if engine else self._settings.device, level, message, values)
        self._diagnostics_publisher.publish(
            diagnostics.diagnostic_array(self.get_clock().now().to_msg(), [status]))

    def _input_silence_s(self) -> Optional[float]:
        """Return how long the active node has waited for an image; warn once past the timeout."""
        if self._state != 'active' or self._activated_s is None:
            return None
        now_s = time.perf_counter()
        since_frame_s = self._stats.seconds_since_last_frame(now_s)
        silent_s = now_s - self._activated_s
        if since_frame_s is not None:
            silent_s = min(silent_s, since_frame_s)
        processing_since_s = self._processing_since_s
        if processing_since_s is not None:  # images wait unread while a frame is processed
            silent_s = min(silent_s, now_s - processing_since_s)
        timeout_s = self._settings.input_timeout_s
        if since_frame_s is not None and 0.0 < timeout_s < silent_s \
                and not self._input_stale_warned:
            self._input_stale_warned = True
            self.get_logger().warning(
                f'input stale: no image on {self._image_topic()} for {silent_s:.1f} s (more '
                f'than input_timeout_s {timeout_s:g}); the camera stopped or its topic is gone. '
                f'Outputs resume with the next image')
        return silent_s

    def _image_topic(self) -> str:
        topic = self.resolve_topic_name('image')
        return topic + '/compressed' if self._settings.use_compressed_input else topic


def pipelined(mode: str, engine: InferenceEngine) -> bool:
    """Whether to publish on the second thread: ``always``, ``never`` or ``auto`` by hardware.

    ``auto`` pipelines when it costs the network nothing: on the CPU when a core is left
    beyond the network's threads. Not on CUDA devices, where it is unmeasured (the
    post-processing would share the network's CUDA stream).
    """
    if mode != 'auto':
        return mode == 'always'
    if engine.device.type != 'cpu':
        return False
    return (os.cpu_count() or 1) > engine.backend.cpu_threads


def _image_of(serialized: bytes):
    """Return a serialised Image read in place, or deserialised when not plain CDR."""
    try:
        return SerializedImage(serialized)
    except SerializedImageError:
        return deserialize_message(serialized, Image)


def _stamp_text(header: Header) -> str:
    return f'{header.stamp.sec}.{header.stamp.nanosec:09d}'


def _network_input(settings: NodeSettings) -> str:
    size = settings.inference_size
    return f'network input {size[1]}x{size[0]}' if size else 'network input at image size'


def main(args: Optional[List[str]] = None) -> int:
    """Run the node until shut down; return non-zero if the configuration is unusable.

    SIGINT or SIGTERM at any time after the imports ends the process with exit code 0 and
    no traceback, during start-up (the context is shut down under the node) as while running.
    rclpy's own handlers shut the context down (from their own thread) and then call the
    Python handler installed before them: ours only records SIGINT, instead of raising
    KeyboardInterrupt at a random place. Shutting down from it as well raced with rclpy's
    shutdown and crashed the process now and then.
    """
    keep_large_buffers()
    quiet_decoder_warnings()
    interrupted = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    node = None
    try:
        rclpy.init(args=args)  # its handlers shut the context down, then call the one above
        if interrupted.is_set():
            return 0
        try:
            node = HydraNetNode()
        except (ConfigurationError, InvalidParameterTypeException,
                InvalidParameterValueException) as error:
            print(f'[hydranet_node] invalid parameter: {error}. Fix it in the parameters file or '
                  f'the -p override; see config/hydranet.yaml', file=sys.stderr)
            return 2
        forward_package_logs(node.get_logger().get_child('engine'))
        if node.get_parameter('autostart').value:
            for transition, name in ((node.trigger_configure, 'configure'),
                                     (node.trigger_activate, 'activate')):
                if transition() == TransitionCallbackReturn.SUCCESS:
                    continue
                if not rclpy.ok():  # a signal arrived during start-up
                    return 0
                node.get_logger().fatal(f'could not {name} at start (see the error above); '
                                        f'fix the parameters and start again')
                return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        if rclpy.ok():
            raise
        # A signal shut the context down while the node was being created.
    finally:
        if node is not None:
            node.on_shutdown(None)
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
