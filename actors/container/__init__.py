"""The sliver's container: workspace, limits of its processes, resource reports, deselect.

==========  ==================================================================
module      concept
==========  ==================================================================
manager     :class:`ContainerManager`, the actor (state machine ``container``)
limits      :class:`Limits` (configuration) and :class:`ProcessLimits` (one instance's)
cgroup      cgroup v2 detection and per-instance sub-cgroups
resources   psutil sampling of process groups, disk use under a directory
==========  ==================================================================
"""

from actors.container.cgroup import CgroupTree, probe
from actors.container.limits import Limits, ProcessLimits
from actors.container.manager import ContainerError, ContainerManager
from actors.container.resources import Sampler, Usage, disk_usage

__all__ = [
    "CgroupTree",
    "ContainerError",
    "ContainerManager",
    "Limits",
    "ProcessLimits",
    "Sampler",
    "Usage",
    "disk_usage",
    "probe",
]
