"""Takes the place of TensorFlow's remote-profiler client extension,
``tensorflow.python.profiler.internal._pywrap_profiler_plugin`` (a 20 MB native module
with its own gRPC client), in the lungapp bundle (packaging/lungapp.spec).

``import tensorflow`` imports it through ``tensorflow.python.profiler.profiler_client``,
whose ``trace`` and ``monitor`` (``tf.profiler.experimental.client``) are its only callers:
they capture a profile from a TensorFlow server over the network. lungapp never profiles
and never connects anywhere (docs/packaging.md, offline), so the bundle leaves the
extension out and these two say so if anything calls them. TensorFlow's local profiler
(``tf.profiler.experimental.start``, ``_pywrap_profiler``) is untouched.
"""


def _not_in_bundle(*_args, **_kwargs):
    raise RuntimeError("tf.profiler.experimental.client is not in the lungapp bundle "
                       "(it profiles a remote TensorFlow server; lungapp works offline)")


trace = _not_in_bundle
monitor = _not_in_bundle
