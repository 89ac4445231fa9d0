"""The JEPA law suite: the spec's laws as Hypothesis properties, run against any backend.

A backend is an object with the members of :class:`jepa_core.Backend`; name it on the
command line, from the repository root:

    pytest properties --jepa-backend=my_package.my_module:backend
    JEPA_BACKEND=my_package.my_module:backend pytest properties

One test module per chapter of docs/spec.md (``test_loss_laws``, ``test_objective``,
``test_regularisers``, ``test_masks``, ``test_ema``, ``test_schedules``); ``conftest``
holds the ``--jepa-backend`` option and the Hypothesis profiles. The strategies and
oracles are importable for other tests as :mod:`properties.strategies` and
:mod:`properties.assertions`. The suite is not part of the installed distribution:
run it from a source checkout.
"""
