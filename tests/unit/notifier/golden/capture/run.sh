#!/bin/bash
NS=llcap-notif
PY=${PY:-python3}  # smtpcap.py and fiforead.py need only the standard library
rm -rf out x.fifo; mkdir -p out
cleanup() {
  [ -n "$KA" ] && kill $KA 2>/dev/null; sleep 0.5; [ -n "$KA" ] && kill -9 $KA 2>/dev/null
  [ -f /tmp/kacap/ka.pid ] && kill -9 $(cat /tmp/kacap/ka.pid) 2>/dev/null
  [ -n "$SM" ] && kill $SM 2>/dev/null; [ -n "$FR" ] && kill $FR 2>/dev/null
  ip netns pids $NS 2>/dev/null | xargs -r kill -9
  ip netns del $NS 2>/dev/null
}
trap cleanup EXIT
ip netns add $NS
ip -n $NS link set lo up
ip -n $NS link add eth0 type veth peer name eth0p
ip -n $NS link add eth1 type veth peer name eth1p
ip -n $NS link set eth0 up; ip -n $NS link set eth0p up; ip -n $NS link set eth1 up   # eth1p down -> eth1 no carrier
ip -n $NS addr add 10.9.0.1/24 dev eth0
ip netns exec $NS $PY smtpcap.py /tmp/kacap/out 2525 & SM=$!
mkfifo -m 0644 x.fifo
ip netns exec $NS $PY fiforead.py x.fifo out/fifo.raw & FR=$!
sleep 0.5
ip netns exec $NS keepalived -n -l -D -f /tmp/kacap/a.conf -p /tmp/kacap/ka.pid -r /tmp/kacap/vr.pid -c /tmp/kacap/ck.pid --vrrp > out/ka.log 2>&1 & KA=$!
sleep 6
echo "--- reload" >> out/marks; cp b.conf a.conf.bak; cp a.conf a.conf.orig; cp b.conf a.conf
kill -HUP $(cat ka.pid); sleep 3
echo "--- stop" >> out/marks
kill -TERM $KA; sleep 3
cp a.conf.orig a.conf
