// ferry's JVM reader for JVMs whose jstat counters are hidden (-XX:+PerfDisableSharedMem, as
// Cassandra's stock options set): attaches to the process (same user), starts its local JMX
// agent, and prints its garbage collectors and heap as one JSON line. Run by ferry with the
// target JVM's own `java` (single-file source launch): java --add-modules jdk.attach JvmGc.java PID
import com.sun.tools.attach.VirtualMachine;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.lang.management.MemoryUsage;
import javax.management.MBeanServerConnection;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public class JvmGc {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address = vm.startLocalManagementAgent();
        vm.detach();
        try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection s = c.getMBeanServerConnection();
            long count = 0, timeMs = 0;
            StringBuilder names = new StringBuilder();
            for (GarbageCollectorMXBean g :
                    ManagementFactory.getPlatformMXBeans(s, GarbageCollectorMXBean.class)) {
                count += Math.max(0, g.getCollectionCount());
                timeMs += Math.max(0, g.getCollectionTime());
                names.append(names.length() == 0 ? "" : ", ").append(g.getName());
            }
            MemoryUsage h = ManagementFactory.getPlatformMXBean(s, MemoryMXBean.class)
                    .getHeapMemoryUsage();
            System.out.println("{\"gc_count\":" + count + ",\"gc_ms\":" + timeMs
                    + ",\"heap_used_bytes\":" + h.getUsed()
                    + ",\"heap_committed_bytes\":" + h.getCommitted()
                    + ",\"heap_max_bytes\":" + h.getMax()
                    + ",\"collectors\":\"" + names.toString().replace("\"", "") + "\"}");
        }
    }
}
