"""Launch the geodistill localizer node.

    ros2 launch geodistill_ros localize.launch.py \
        image_topic:=/kitti/camera_color_left/image_raw \
        camera_info_topic:=/kitti/camera_color_left/camera_info \
        fix_topic:=/kitti/oxts/gps/fix_noisy twist_topic:=/kitti/oxts/twist \
        use_sim_time:=true

The node is a managed (lifecycle) node: autostart:=false leaves it unconfigured until a
lifecycle manager drives it through ~/change_state (configure, activate).

Parameters come from config/localize.yaml in the package share directory unless
params_file:=... names another file.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = 'geodistill_ros'


def generate_launch_description():
    default_params = PathJoinSubstitution([FindPackageShare(PACKAGE), 'config', 'localize.yaml'])
    arguments = [
        DeclareLaunchArgument('params_file', default_value=default_params,
                              description='Node parameter file (ros__parameters YAML)'),
        DeclareLaunchArgument('use_sim_time', default_value='false',
                              description='Use /clock (true when replaying bags)'),
        DeclareLaunchArgument('autostart', default_value='true',
                              description='Configure and activate the (lifecycle) node at '
                              'start-up; false: leave it unconfigured for a lifecycle '
                              'manager (e.g. nav2_lifecycle_manager)'),
        DeclareLaunchArgument('image_topic', default_value='/camera/image_raw',
                              description='sensor_msgs/Image input'),
        DeclareLaunchArgument('compressed_image_topic',
                              default_value='/camera/image_raw/compressed',
                              description='sensor_msgs/CompressedImage input'),
        DeclareLaunchArgument('camera_info_topic', default_value='/camera/camera_info',
                              description='sensor_msgs/CameraInfo (pinhole cameras)'),
        DeclareLaunchArgument('fix_topic', default_value='/gnss/fix',
                              description='sensor_msgs/NavSatFix input'),
        DeclareLaunchArgument('heading_topic', default_value='/heading_prior',
                              description='optional yaw prior (geometry_msgs/QuaternionStamped)'),
        DeclareLaunchArgument('gnss_velocity_topic', default_value='/gnss/fix_velocity',
                              description="optional GNSS receiver velocity, east/north m/s "
                              '(TwistWithCovarianceStamped, or TwistStamped with '
                              'gnss_velocity_input twist): its course over ground is the yaw '
                              'prior without an INS'),
        DeclareLaunchArgument('twist_topic', default_value='/odometry/twist',
                              description='odometry for the filter (geometry_msgs/'
                              'TwistWithCovarianceStamped, base_link; fusion.odometry twist)'),
        DeclareLaunchArgument('odom_topic', default_value='/odom',
                              description='odometry for the filter (nav_msgs/Odometry; '
                              'fusion.odometry odometry)'),
        DeclareLaunchArgument('namespace', default_value='geodistill',
                              description='namespace of the outputs pose, pose_single, '
                              'fix_corrected, heatmap and the ~/reset service'),
        DeclareLaunchArgument('log_level', default_value='info'),
    ]
    node = Node(
        package=PACKAGE,
        executable='localizer_node',
        name='geodistill_localizer',
        namespace=LaunchConfiguration('namespace'),
        output='screen',
        emulate_tty=True,
        parameters=[
            LaunchConfiguration('params_file'),
            {'use_sim_time': ParameterValue(LaunchConfiguration('use_sim_time'),
                                            value_type=bool),
             'autostart': ParameterValue(LaunchConfiguration('autostart'), value_type=bool)},
        ],
        remappings=[
            ('image', LaunchConfiguration('image_topic')),
            ('image/compressed', LaunchConfiguration('compressed_image_topic')),
            ('camera_info', LaunchConfiguration('camera_info_topic')),
            ('fix', LaunchConfiguration('fix_topic')),
            ('heading_prior', LaunchConfiguration('heading_topic')),
            ('gnss_velocity', LaunchConfiguration('gnss_velocity_topic')),
            ('twist', LaunchConfiguration('twist_topic')),
            ('odom', LaunchConfiguration('odom_topic')),
        ],
        arguments=['--ros-args', '--log-level', LaunchConfiguration('log_level')],
    )
    return LaunchDescription(arguments + [node])
