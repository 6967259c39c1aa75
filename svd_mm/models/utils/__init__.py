from .acs_conv import ACSConv3d
from .baseline_importers import (BASELINE_CONVERTERS, convert_acs_resnet,
                                 convert_genesis, convert_kinetics_3d_resnet,
                                 convert_med3d, format_report,
                                 inflate_2d_resnet)
from .connected_components import largest_connected_component
from .official_importers import (OFFICIAL_CONVERTERS, convert_mp3d_p3d,
                                 convert_svd_release_r3d18)
from .weight_transfer import (adapt_first_conv_weight, load_backbone_weights,
                              read_state_dict, select_prefix)

__all__ = [
    'largest_connected_component', 'adapt_first_conv_weight',
    'load_backbone_weights', 'read_state_dict', 'select_prefix', 'ACSConv3d',
    'BASELINE_CONVERTERS',
    'convert_acs_resnet', 'convert_genesis', 'convert_kinetics_3d_resnet',
    'convert_med3d', 'format_report', 'inflate_2d_resnet',
    'OFFICIAL_CONVERTERS', 'convert_mp3d_p3d', 'convert_svd_release_r3d18'
]
