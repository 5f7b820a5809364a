"""hydranet_node: camera images in; metric depth, semantic labels and their class map out.

A lifecycle node (``autostart`` configures and activates it at start) wired from stages:
configuring loads the engine (``engine_holder``) and creates the outputs (``outputs``: one
declaration per topic, the latched class map, camera_info); activating subscribes the camera
input (``camera_input``) and starts the processing threads (``processing``), which always take
the newest frame and drop older ones. Outputs carry the input image's header; health goes to
``/diagnostics`` (``diagnostics``). Parameters and their checks: ``parameters``.
"""
import sys
from typing import Dict, List, Optional

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException
# RCLError (what rcl raises when the context is shut down under a call) has no public name.
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rcl_interfaces.msg import SetParametersResult
from diagnostic_msgs.msg import DiagnosticArray

from ..engine import InferenceEngine
from ..engine.class_map import model_name
from ..engine.memory import keep_large_buffers
from ..signals import record_stop_signals
from . import diagnostics
from .camera_input import CameraInput, Cameras
from .engine_holder import EngineHolder, build_engine, release_memory
from .input_checks import REJECTION_KINDS
from .messages import quiet_decoder_warnings
from .outputs import OUTPUT_DECLARATIONS, OUTPUT_PARAMETERS, Outputs
from .parameters import (CORE_SPECS, NodeSettings, ParameterTable, asks_for_help,
                         declared_default, descriptor, input_qos, normalised, usage_text)
from .processing import FrameProcessor

NODE_NAME = 'hydranet_node'
PARAMETERS = ParameterTable(CORE_SPECS + OUTPUT_PARAMETERS)
DIAGNOSTICS_PERIOD_S = 1.0
DIAGNOSTICS_QOS_DEPTH = 10
# Settings whose change is applied to the published class map.
LABEL_INFO_PARAMETERS = frozenset(('confidence_threshold', 'min_depth_m', 'max_depth_m'))


class ConfigurationError(ValueError):
    """A parameter given at start is invalid; the message says which and why."""


class HydraNetNode(LifecycleNode):
    """Lifecycle node that runs HydraNet on camera images (see the module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.settings = self._declare_parameters()
        self._cameras = Cameras(self, PARAMETERS.cameras(self.settings),
                                diagnostics.RejectionLog(self.get_logger().warning))
        self._processor = FrameProcessor(self, self._cameras)
        self.engines: EngineHolder[NodeSettings, InferenceEngine] = EngineHolder(
            self._build_engine, PARAMETERS.engine_key, self._on_engine_swapped,
            self._on_engine_failed)
        self._outputs: Dict[str, Outputs] = {}
        self._engine_error: Optional[str] = None
        self._rejections_reported: Dict[str, int] = {}
        self._diagnostics_publisher = self.create_publisher(
            DiagnosticArray, '/diagnostics', DIAGNOSTICS_QOS_DEPTH)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._on_set_parameters)

    # ------------------------------------------------------------------ parameters
    def _declare_parameters(self) -> NodeSettings:
        values = {spec.name: normalised(self.declare_parameter(
            spec.name, declared_default(spec), descriptor(spec)).value, spec)
            for spec in PARAMETERS.specs}
        for name, value in values.items():
            reason = PARAMETERS.check_value(name, value, check_files=False)
            if reason:
                raise ConfigurationError(reason)
        settings = NodeSettings(values)
        reason = PARAMETERS.check_settings(settings)
        if reason:
            raise ConfigurationError(reason)
        return settings

    def _on_set_parameters(self, parameters: List[Parameter]) -> SetParametersResult:
        changes = {p.name: normalised(p.value, PARAMETERS.by_name[p.name]) for p in parameters
                   if p.name in PARAMETERS.by_name}
        for name, value in changes.items():
            if PARAMETERS.by_name[name].read_only:
                return SetParametersResult(successful=False,
                                           reason=f'{name} is read-only; restart the node')
            reason = PARAMETERS.check_value(name, value)
            if reason:
                return SetParametersResult(successful=False, reason=reason)
        if not changes:
            return SetParametersResult(successful=True)
        settings = self.settings.replace(changes)
        reason = PARAMETERS.check_settings(settings)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        self.settings = settings
        if self._outputs:
            self._apply_settings(settings, set(changes))
        return SetParametersResult(successful=True)

    def _apply_settings(self, settings: NodeSettings, changed: set) -> None:
        for camera in self._cameras.all:
            self._outputs[camera.name].sync(settings)
            camera.configure(settings)
        if PARAMETERS.engine_parameters & changed:
            serving = self.engines.settings
            if self.engines.request(settings):
                self.get_logger().info(
                    'rebuilding the engine in the background for ' +
                    ', '.join(f'{k}={getattr(settings, k)!r}' for k in sorted(changed)
                              if k in PARAMETERS.engine_parameters) +
                    '; the current engine serves until the new one is ready')
            elif serving is not None and \
                    PARAMETERS.engine_key(serving) == PARAMETERS.engine_key(settings):
                self._engine_error = None  # back to what serves: an earlier failure is moot
        if LABEL_INFO_PARAMETERS & changed:
            self._publish_label_infos()

    # ------------------------------------------------------------------ engine
    def _build_engine(self, settings: NodeSettings) -> InferenceEngine:
        rebuild = self.engines.engine is not None  # export beside the serving engine
        return build_engine(settings, self._processor.last_image_size, in_child_first=rebuild)

    def _on_engine_swapped(self, engine: InferenceEngine, settings: NodeSettings) -> None:
        self._engine_error = None
        self.get_logger().info(f'now serving {model_name(settings.model_path)} with '
                               f'{engine.describe()}, {engine.network_input_text()}')
        self._publish_label_infos()

    def _on_engine_failed(self, settings: NodeSettings, error: Exception) -> None:
        self._engine_error = diagnostics.short_reason(error) + ' (the full reason is in the log)'
        serving = self.engines.settings
        still = (f'still serving {model_name(serving.model_path)}'
                 if serving is not None else 'no engine is serving')
        self.get_logger().error(f'cannot build the engine ({type(error).__name__}: {error}); '
                                f'{still}')

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Load the model and create the publishers; FAILURE (never a crash) if it cannot."""
        settings = self.settings
        try:
            engine = self.engines.load(settings)
        except Exception as error:  # a bad model or device must not kill the node
            self._engine_error = diagnostics.short_reason(error)
            self.get_logger().error(f'configure failed: cannot load the model: '
                                    f'{type(error).__name__}: {error}')
            return TransitionCallbackReturn.FAILURE
        self._engine_error = None
        for camera in self._cameras.all:
            self._outputs[camera.name] = Outputs(self, camera.name)
            self._outputs[camera.name].sync(settings)
        self.get_logger().info(f'configured: {model_name(settings.model_path)} '
                               f'({engine.config.num_classes} classes) with '
                               f'{engine.describe()}, {engine.network_input_text()}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Subscribe to the cameras and start the processing threads."""
        settings = self.settings
        self._cameras.subscribe(settings, input_qos(settings.input_qos, settings.input_qos_depth))
        self._processor.start()
        self._publish_label_infos()
        self.get_logger().info('active: processing ' + '; '.join(
            f'{c.image_topic} with camera_info from {c.camera_info_topic}'
            for c in self._cameras.all))
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Stop the processing threads after the frame in progress, then unsubscribe."""
        if not self._processor.stop():
            self.get_logger().warning('a processing thread did not stop in time')
        self._unsubscribe()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Destroy the publishers and free the engine (and its GPU memory)."""
        return self._release()

    def on_shutdown(self, state: Optional[State]) -> TransitionCallbackReturn:
        """Stop everything."""
        self._processor.stop()
        return self._release()

    def on_error(self, state: State) -> TransitionCallbackReturn:
        """Return to unconfigured after an error in a transition."""
        self.get_logger().error(f'error in state {state.label}: cleaning up')
        self._processor.stop()
        return self._release()

    def _unsubscribe(self) -> None:
        if self._processor.running:
            return  # the thread still reads the subscriptions; they go with the node
        self._cameras.unsubscribe()

    def _release(self) -> TransitionCallbackReturn:
        self._unsubscribe()
        for outputs in self._outputs.values():
            outputs.destroy()
        self._outputs.clear()
        engine = self.engines.engine
        self.engines.release()
        self._cameras.forget_camera_info()
        if engine is not None:
            device = engine.device
            del engine
            release_memory(device)
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ for the stages
    def lifecycle_state(self) -> str:
        """Return the label of the current lifecycle state (``active``, ``activating``, ...).

        rclpy has no public accessor; its own ``trigger_shutdown`` reads it this way.
        """
        return self._state_machine.current_state[1]

    def is_active(self) -> bool:
        """Whether frames should be processed (active, or becoming so)."""
        return self.lifecycle_state() in ('active', 'activating')

    def outputs_of(self, camera: CameraInput) -> Optional[Outputs]:
        """Return the outputs of a camera (None while unconfigured)."""
        return self._outputs.get(camera.name)

    def _publish_label_infos(self) -> None:
        for outputs in list(self._outputs.values()):
            self.publish_label_info(outputs)

    def publish_label_info(self, outputs: Optional[Outputs]) -> None:
        """Publish the class map of the serving model on ``outputs``."""
        engine, serving = self.engines.engine, self.engines.settings
        if outputs is None or engine is None or serving is None:
            return
        outputs.publish_label_info(engine, serving.model_path, self.settings,
                                   self.get_clock().now().to_msg())

    def reject_unattributed(self, kind: str, reason: str) -> None:
        """Count and log a failure that no camera frame can be blamed for."""
        self._cameras.all[0].reject(None, kind, reason)

    # ------------------------------------------------------------------ health
    def _publish_diagnostics(self) -> None:
        engine, serving = self.engines.engine, self.engines.settings
        state = self.lifecycle_state()
        shared = [('state', state),
                  ('model', model_name(serving.model_path) if serving else ''),
                  ('backend', engine.describe() if engine else ''),
                  ('network_input', engine.network_input_text() if engine else ''),
                  ('device', str(engine.device) if engine else self.settings.device),
                  ('classes', engine.config.num_classes if engine else 0),
                  ('engine_rebuilding', self.engines.rebuilding),
                  ('engine_error', self._engine_error or ''),
                  ('cameras', len(self._cameras.all)),
                  ('batches', self._processor.batches),
                  ('inference_lanes', self._processor.lanes),
                  ('mean_batch_size', self._processor.batched_frames /
                   max(1, self._processor.batches))]
        statuses = [self._camera_status(camera, state, shared, engine is not None)
                    for camera in self._cameras.all]
        self._diagnostics_publisher.publish(
            diagnostics.diagnostic_array(self.get_clock().now().to_msg(), statuses))

    def _camera_status(self, camera: CameraInput, state: str, shared: list,
                       has_engine: bool):
        """Return one camera's DiagnosticStatus: its own figures and the shared engine's."""
        snapshot = camera.stats.snapshot()
        reported = self._rejections_reported.get(camera.name, 0)
        self._rejections_reported[camera.name] = snapshot['frames_rejected']
        for kind in REJECTION_KINDS:
            snapshot.setdefault(f'frames_rejected_{kind}', 0)
        camera_info_known = camera.camera_info is not None
        silent_s = camera.silence_s()
        level, message = diagnostics.health(
            state, snapshot, camera_info_known, snapshot['frames_rejected'] - reported,
            self._engine_error, has_engine, silent_s, self.settings.input_timeout_s)
        values = shared + [('camera', camera.name), ('image_topic', camera.image_topic),
                           ('camera_info_received', camera_info_known),
                           ('seconds_since_last_image', -1.0 if silent_s is None else silent_s)]
        name = f'{self.get_name()}: ' + (f'camera {camera.name}' if camera.name
                                         else 'depth and segmentation')
        return diagnostics.diagnostic_status(name, dict(shared)['device'], level, message,
                                             values + sorted(snapshot.items()))


def main(args: Optional[List[str]] = None) -> int:
    """Run the node until shut down; return non-zero if the configuration is unusable.

    SIGINT or SIGTERM at any time after the imports ends the process with exit code 0 and
    no traceback, during start-up (the context is shut down under the node) as while running.
    rclpy's own handlers shut the context down (from their own thread) and then call the
    Python handler installed before them: ours only records the signal (also a second one
    during shutdown), instead of raising KeyboardInterrupt at a random place. Shutting down
    from it as well raced with rclpy's shutdown and crashed the process now and then.
    """
    if asks_for_help(sys.argv if args is None else args):
        print(usage_text(PARAMETERS, [o.topic for o in OUTPUT_DECLARATIONS]))
        return 0
    keep_large_buffers()
    quiet_decoder_warnings()
    interrupted = record_stop_signals()
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
                  f'the -p override; `hydranet_node --help` lists every parameter',
                  file=sys.stderr)
            return 2
        diagnostics.forward_package_logs(node.get_logger().get_child('engine'))
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
    except _rclpy.RCLError:
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
